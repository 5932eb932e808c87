"""Client apps that run a phone bundle on the device: `web` (LiteRT.js in a browser, a static site)."""
