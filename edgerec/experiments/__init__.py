"""Experiments on live traffic: arm assignment, the experiment record, and the report of an event log."""
