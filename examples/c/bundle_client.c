/*
 * bundle_client: a native client of edgerec's phone bundle (target tflite-bundle) on the LiteRT 2.x C API.
 *
 * It loads model.tflite with libLiteRt.so (CPU accelerator, --threads N, 1 by default), then runs a request file:
 * each request names a signature ("recommend", "score", "fold_in", ...), gives its input tensors by name and lists
 * the output tensors it wants by name. Signatures and tensors are looked up by the names read at run time, never by
 * position, so no name is built into this program. The formats (little-endian, as written by the host):
 *
 *   request file:  "ERQ1" u32 n_requests, then per request:
 *                    str signature, u32 n_inputs, n_inputs x input, u32 n_outputs, n_outputs x str output_name
 *                  input: str name, str dtype ("float32", "int32", ...), u64 nbytes, then either nbytes raw bytes
 *                    or, when nbytes is 2^64-1, u32 request_index and str output_name: the tensor is that output of
 *                    an earlier request (fold_in -> recommend -> explain chained in this process)
 *   output file:   "ERS1" u32 n_requests, then per request: u32 n_outputs, then per output:
 *                    str name, str dtype, u32 rank, rank x i32 dims, u64 nbytes, nbytes raw bytes
 *   str:           u32 length, then that many bytes (no terminating NUL)
 *
 * Usage:
 *   bundle_client MODEL --list                         signatures, their inputs and outputs (name dtype d0,d1,...)
 *   bundle_client MODEL REQUESTS OUT                   run every request in order, write every wanted output to OUT
 *   bundle_client MODEL REQUESTS [OUT] --bench N       and then time N calls of each signature after a warm-up
 *   options: --threads N (CPU threads, default 1), --verbose (LiteRT's own log messages, warnings and up)
 *
 * Every failure (bad model path, missing signature or tensor, a wrong dtype or size, a LiteRT call that does not
 * return kLiteRtStatusOk) prints one line on stderr and exits with status 2 after freeing what was created.
 *
 * The LiteRT declarations below are the subset of the LiteRT C API this program calls, transcribed from the
 * Apache-2.0 headers of google-ai-edge/LiteRT (litert/c/...) at commit f67457790c9c (2026-08-21); the declarations
 * used are unchanged from tag v2.2.0 to that commit. libLiteRt.so ships no headers, and struct layouts and enum
 * values are the ABI: pin the ai-edge-litert wheel the library comes from (README.md).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- LiteRT C API (libLiteRt.so) -------------------------------------------------------------------------------- */

/* litert/c/litert_common.h: LITERT_DEFINE_HANDLE(name) in C */
typedef struct LiteRtEnvironmentT *LiteRtEnvironment;
typedef struct LiteRtModelT *LiteRtModel;
typedef struct LiteRtSignatureT *LiteRtSignature;
typedef struct LiteRtTensorT *LiteRtTensor;
typedef struct LiteRtOptionsT *LiteRtOptions;
typedef struct LiteRtOpaqueOptionsT *LiteRtOpaqueOptions;
typedef struct LiteRtCompiledModelT *LiteRtCompiledModel;
typedef struct LiteRtTensorBufferT *LiteRtTensorBuffer;
typedef struct LiteRtTensorBufferRequirementsT *LiteRtTensorBufferRequirements;
typedef size_t LiteRtParamIndex;
typedef int LiteRtHwAcceleratorSet;

/* litert/c/litert_common.h: LiteRtStatus */
typedef enum {
    kLiteRtStatusOk = 0,
    kLiteRtStatusErrorInvalidArgument = 1,
    kLiteRtStatusErrorMemoryAllocationFailure = 2,
    kLiteRtStatusErrorRuntimeFailure = 3,
    kLiteRtStatusErrorMissingInputTensor = 4,
    kLiteRtStatusErrorUnsupported = 5,
    kLiteRtStatusErrorNotFound = 6,
    kLiteRtStatusErrorTimeoutExpired = 7,
    kLiteRtStatusErrorWrongVersion = 8,
    kLiteRtStatusErrorUnknown = 9,
    kLiteRtStatusErrorAlreadyExists = 10,
    kLiteRtStatusCancelled = 100,
    kLiteRtStatusErrorFileIO = 500,
    kLiteRtStatusErrorInvalidFlatbuffer = 501,
    kLiteRtStatusErrorDynamicLoading = 502,
    kLiteRtStatusErrorSerialization = 503,
    kLiteRtStatusErrorCompilation = 504,
    kLiteRtStatusErrorIndexOOB = 1000,
    kLiteRtStatusErrorInvalidIrType = 1001,
    kLiteRtStatusErrorInvalidGraphInvariant = 1002,
    kLiteRtStatusErrorGraphModification = 1003,
    kLiteRtStatusErrorInvalidToolConfig = 1500,
    kLiteRtStatusLegalizeNoMatch = 2000,
    kLiteRtStatusErrorInvalidLegalization = 2001,
    kLiteRtStatusPatternNoMatch = 3000,
    kLiteRtStatusInvalidTransformation = 3001,
    kLiteRtStatusErrorUnsupportedRuntimeVersion = 4000,
    kLiteRtStatusErrorUnsupportedCompilerVersion = 4001,
    kLiteRtStatusErrorIncompatibleByteCodeVersion = 4002,
    kLiteRtStatusErrorUnsupportedOpShapeInferer = 5000,
    kLiteRtStatusErrorShapeInferenceFailed = 5001,
} LiteRtStatus;

/* litert/c/litert_common.h: LiteRtHwAccelerators (kLiteRtHwAcceleratorCpu = 1 << 0) */
enum { kLiteRtHwAcceleratorCpu = 1 };

/* litert/c/litert_common.h: LiteRtTensorBufferLockMode */
typedef enum {
    kLiteRtTensorBufferLockModeRead = 0,
    kLiteRtTensorBufferLockModeWrite = 1,
    kLiteRtTensorBufferLockModeReadWrite = 2,
} LiteRtTensorBufferLockMode;

/* litert/c/litert_any.h */
typedef enum {
    kLiteRtAnyTypeNone = 0,
    kLiteRtAnyTypeBool = 1,
    kLiteRtAnyTypeInt = 2,
    kLiteRtAnyTypeReal = 3,
    kLiteRtAnyTypeString = 8,
    kLiteRtAnyTypeVoidPtr = 9,
} LiteRtAnyType;

typedef struct {
    LiteRtAnyType type;
    union {
        bool bool_value;
        int64_t int_value;
        double real_value;
        const char *str_value;
        const void *ptr_value;
    };
} LiteRtAny;

/* litert/c/litert_environment_options.h (two of the tags) */
typedef enum {
    kLiteRtEnvOptionTagAutoRegisterAccelerators = 24, /* bitmask of LiteRtHwAccelerators registered at creation */
    kLiteRtEnvOptionTagMinLoggerSeverity = 25,
} LiteRtEnvOptionTag;

typedef struct {
    LiteRtEnvOptionTag tag;
    LiteRtAny value;
} LiteRtEnvOption;

/* litert/c/internal/litert_logging.h: LiteRtLogSeverity values */
enum { kLiteRtLogSeverityWarning = 2, kLiteRtLogSeveritySilent = 4 };

/* litert/c/litert_model_types.h: LiteRtElementType (the TfLiteType values) */
typedef enum {
    kLiteRtElementTypeNone = 0,
    kLiteRtElementTypeBool = 6,
    kLiteRtElementTypeInt2 = 20,
    kLiteRtElementTypeInt4 = 18,
    kLiteRtElementTypeInt8 = 9,
    kLiteRtElementTypeInt16 = 7,
    kLiteRtElementTypeInt32 = 2,
    kLiteRtElementTypeInt64 = 4,
    kLiteRtElementTypeUInt4 = 21,
    kLiteRtElementTypeUInt8 = 3,
    kLiteRtElementTypeUInt16 = 17,
    kLiteRtElementTypeUInt32 = 16,
    kLiteRtElementTypeUInt64 = 13,
    kLiteRtElementTypeFloat8E4M3FN = 22,
    kLiteRtElementTypeFloat8E5M2 = 23,
    kLiteRtElementTypeFloat16 = 10,
    kLiteRtElementTypeBFloat16 = 19,
    kLiteRtElementTypeFloat32 = 1,
    kLiteRtElementTypeFloat64 = 11,
    kLiteRtElementTypeComplex64 = 8,
    kLiteRtElementTypeComplex128 = 12,
    kLiteRtElementTypeTfResource = 14,
    kLiteRtElementTypeTfString = 5,
    kLiteRtElementTypeTfVariant = 15,
} LiteRtElementType;

/* litert/c/litert_model_types.h: LiteRtTensorTypeId */
typedef enum { kLiteRtRankedTensorType = 0, kLiteRtUnrankedTensorType = 1 } LiteRtTensorTypeId;

/* litert/c/litert_layout.h */
#define LITERT_TENSOR_MAX_RANK 8
typedef struct {
    unsigned int rank : 7;
    unsigned int has_strides : 1;
    int32_t dimensions[LITERT_TENSOR_MAX_RANK];
    uint32_t strides[LITERT_TENSOR_MAX_RANK];
} LiteRtLayout;

/* litert/c/litert_model_types.h */
typedef struct {
    LiteRtElementType element_type;
    LiteRtLayout layout;
} LiteRtRankedTensorType;

/* the sizes the headers static_assert on 64-bit targets */
_Static_assert(sizeof(void *) != 8 || sizeof(LiteRtAny) == 16, "LiteRtAny size");
_Static_assert(sizeof(void *) != 8 || sizeof(LiteRtEnvOption) == 24, "LiteRtEnvOption size");
_Static_assert(sizeof(void *) != 8 || offsetof(LiteRtEnvOption, value) == 8, "LiteRtEnvOption value offset");
_Static_assert(sizeof(void *) != 8 || sizeof(LiteRtLayout) == 68, "LiteRtLayout size");
_Static_assert(sizeof(void *) != 8 || offsetof(LiteRtLayout, dimensions) == 4, "LiteRtLayout dimensions offset");
_Static_assert(sizeof(void *) != 8 || sizeof(LiteRtRankedTensorType) == 72, "LiteRtRankedTensorType size");
_Static_assert(sizeof(void *) != 8 || offsetof(LiteRtRankedTensorType, layout) == 4, "layout offset");

/* litert/c/litert_environment.h */
LiteRtStatus LiteRtCreateEnvironment(int num_options, const LiteRtEnvOption *options, LiteRtEnvironment *environment);
void LiteRtDestroyEnvironment(LiteRtEnvironment environment);

/* litert/c/litert_model.h */
LiteRtStatus LiteRtCreateModelFromFile(LiteRtEnvironment environment, const char *filename, LiteRtModel *model);
void LiteRtDestroyModel(LiteRtModel model);
LiteRtStatus LiteRtGetNumModelSignatures(LiteRtModel model, LiteRtParamIndex *num_signatures);
LiteRtStatus LiteRtGetModelSignature(LiteRtModel model, LiteRtParamIndex signature_index, LiteRtSignature *signature);
LiteRtStatus LiteRtGetSignatureKey(LiteRtSignature signature, const char **signature_key);
LiteRtStatus LiteRtGetNumSignatureInputs(LiteRtSignature signature, LiteRtParamIndex *num_inputs);
LiteRtStatus LiteRtGetSignatureInputName(LiteRtSignature signature, LiteRtParamIndex input_idx,
                                         const char **input_name);
LiteRtStatus LiteRtGetSignatureInputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex input_idx,
                                                  LiteRtTensor *tensor);
LiteRtStatus LiteRtGetNumSignatureOutputs(LiteRtSignature signature, LiteRtParamIndex *num_outputs);
LiteRtStatus LiteRtGetSignatureOutputName(LiteRtSignature signature, LiteRtParamIndex output_idx,
                                          const char **output_name);
LiteRtStatus LiteRtGetSignatureOutputTensorByIndex(LiteRtSignature signature, LiteRtParamIndex output_idx,
                                                   LiteRtTensor *tensor);
LiteRtStatus LiteRtGetTensorTypeId(LiteRtTensor tensor, LiteRtTensorTypeId *type_id);
LiteRtStatus LiteRtGetRankedTensorType(LiteRtTensor tensor, LiteRtRankedTensorType *ranked_tensor_type);

/* litert/c/litert_options.h, litert/c/litert_opaque_options.h */
LiteRtStatus LiteRtCreateOptions(LiteRtOptions *options);
void LiteRtDestroyOptions(LiteRtOptions options);
LiteRtStatus LiteRtSetOptionsHardwareAccelerators(LiteRtOptions options, LiteRtHwAcceleratorSet hardware_accelerators);
LiteRtStatus LiteRtAddOpaqueOptions(LiteRtOptions options, LiteRtOpaqueOptions opaque_options); /* takes ownership */
LiteRtStatus LiteRtCreateOpaqueOptions(const char *payload_identifier, void *payload_data,
                                       void (*payload_destructor)(void *payload_data), LiteRtOpaqueOptions *options);
void LiteRtDestroyOpaqueOptions(LiteRtOpaqueOptions options);

/* litert/c/litert_compiled_model.h */
LiteRtStatus LiteRtCreateCompiledModel(LiteRtEnvironment environment, LiteRtModel model,
                                       LiteRtOptions compilation_options, LiteRtCompiledModel *compiled_model);
void LiteRtDestroyCompiledModel(LiteRtCompiledModel compiled_model);
LiteRtStatus LiteRtGetCompiledModelInputBufferRequirements(LiteRtCompiledModel compiled_model,
                                                           LiteRtParamIndex signature_index,
                                                           LiteRtParamIndex input_index,
                                                           LiteRtTensorBufferRequirements *buffer_requirements);
LiteRtStatus LiteRtGetCompiledModelOutputBufferRequirements(LiteRtCompiledModel compiled_model,
                                                            LiteRtParamIndex signature_index,
                                                            LiteRtParamIndex output_index,
                                                            LiteRtTensorBufferRequirements *buffer_requirements);
LiteRtStatus LiteRtRunCompiledModel(LiteRtCompiledModel compiled_model, LiteRtParamIndex signature_index,
                                    size_t num_input_buffers, LiteRtTensorBuffer *input_buffers,
                                    size_t num_output_buffers, LiteRtTensorBuffer *output_buffers);

/* litert/c/litert_tensor_buffer.h */
LiteRtStatus LiteRtCreateManagedTensorBufferFromRequirements(LiteRtEnvironment env,
                                                             const LiteRtRankedTensorType *tensor_type,
                                                             LiteRtTensorBufferRequirements requirements,
                                                             LiteRtTensorBuffer *buffer);
LiteRtStatus LiteRtGetTensorBufferPackedSize(LiteRtTensorBuffer tensor_buffer, size_t *size);
LiteRtStatus LiteRtLockTensorBuffer(LiteRtTensorBuffer tensor_buffer, void **host_mem_addr,
                                    LiteRtTensorBufferLockMode lock_mode);
LiteRtStatus LiteRtUnlockTensorBuffer(LiteRtTensorBuffer buffer);
void LiteRtDestroyTensorBuffer(LiteRtTensorBuffer buffer);

/* ---- the client ------------------------------------------------------------------------------------------------- */

#define EXIT_FAIL 2
#define MAX_NAME 4096
#define REF_MARK UINT64_MAX

typedef struct {
    const char *name; /* owned by the LiteRtModel */
    LiteRtRankedTensorType type;
    const char *dtype;
    size_t nbytes;
} Tensor;

typedef struct {
    const char *key; /* owned by the LiteRtModel */
    LiteRtParamIndex index;
    size_t n_in, n_out;
    Tensor *in, *out;
    LiteRtTensorBuffer *in_buf, *out_buf; /* created at the signature's first run */
} Sig;

typedef struct {
    bool given;
    const uint8_t *data; /* into the request file's bytes, or NULL for a reference */
    uint32_t ref_request;
    size_t ref_output; /* index into that request's wanted outputs */
} Input;

typedef struct {
    Sig *sig;
    Input *in;       /* [sig->n_in], in the signature's input order */
    size_t n_out;    /* outputs wanted, in the request's order */
    size_t *out_idx; /* their indices in the signature's outputs */
    uint8_t **out_data;
} Request;

static struct {
    LiteRtEnvironment env;
    LiteRtModel model;
    LiteRtOptions options;
    LiteRtCompiledModel compiled;
    Sig *sigs;
    size_t n_sigs;
    uint8_t *file; /* the request file */
    size_t file_size;
    Request *reqs;
    uint32_t n_reqs;
    double *samples;
    FILE *out;
    const char *out_path;
} app;

static void app_free(void) {
    if (app.out) {
        fclose(app.out);
        app.out = NULL;
    }
    for (uint32_t r = 0; app.reqs && r < app.n_reqs; r++) {
        Request *q = &app.reqs[r];
        for (size_t j = 0; q->out_data && j < q->n_out; j++) free(q->out_data[j]);
        free(q->out_data);
        free(q->out_idx);
        free(q->in);
    }
    free(app.reqs);
    app.reqs = NULL;
    for (size_t s = 0; app.sigs && s < app.n_sigs; s++) {
        Sig *g = &app.sigs[s];
        for (size_t i = 0; g->in_buf && i < g->n_in; i++)
            if (g->in_buf[i]) LiteRtDestroyTensorBuffer(g->in_buf[i]);
        for (size_t i = 0; g->out_buf && i < g->n_out; i++)
            if (g->out_buf[i]) LiteRtDestroyTensorBuffer(g->out_buf[i]);
        free(g->in_buf);
        free(g->out_buf);
        free(g->in);
        free(g->out);
    }
    free(app.sigs);
    app.sigs = NULL;
    if (app.compiled) LiteRtDestroyCompiledModel(app.compiled);
    app.compiled = NULL;
    if (app.options) LiteRtDestroyOptions(app.options);
    app.options = NULL;
    if (app.model) LiteRtDestroyModel(app.model);
    app.model = NULL;
    if (app.env) LiteRtDestroyEnvironment(app.env);
    app.env = NULL;
    free(app.file);
    app.file = NULL;
    free(app.samples);
    app.samples = NULL;
}

/* One line on stderr, everything freed, exit status 2. */
__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
    va_list ap;
    fputs("bundle_client: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    bool remove_out = app.out != NULL;
    app_free();
    if (remove_out) remove(app.out_path); /* no half-written output file */
    exit(EXIT_FAIL);
}

static const char *status_name(LiteRtStatus s) {
    switch (s) {
    case kLiteRtStatusOk: return "Ok";
    case kLiteRtStatusErrorInvalidArgument: return "ErrorInvalidArgument";
    case kLiteRtStatusErrorMemoryAllocationFailure: return "ErrorMemoryAllocationFailure";
    case kLiteRtStatusErrorRuntimeFailure: return "ErrorRuntimeFailure";
    case kLiteRtStatusErrorMissingInputTensor: return "ErrorMissingInputTensor";
    case kLiteRtStatusErrorUnsupported: return "ErrorUnsupported";
    case kLiteRtStatusErrorNotFound: return "ErrorNotFound";
    case kLiteRtStatusErrorTimeoutExpired: return "ErrorTimeoutExpired";
    case kLiteRtStatusErrorWrongVersion: return "ErrorWrongVersion";
    case kLiteRtStatusErrorUnknown: return "ErrorUnknown";
    case kLiteRtStatusErrorAlreadyExists: return "ErrorAlreadyExists";
    case kLiteRtStatusCancelled: return "Cancelled";
    case kLiteRtStatusErrorFileIO: return "ErrorFileIO";
    case kLiteRtStatusErrorInvalidFlatbuffer: return "ErrorInvalidFlatbuffer";
    case kLiteRtStatusErrorDynamicLoading: return "ErrorDynamicLoading";
    case kLiteRtStatusErrorSerialization: return "ErrorSerialization";
    case kLiteRtStatusErrorCompilation: return "ErrorCompilation";
    case kLiteRtStatusErrorIndexOOB: return "ErrorIndexOOB";
    default: return "error";
    }
}

/* "<function> failed (<context>): kLiteRtStatus<name> (<code>)[; LiteRT: <its own message>]" */
__attribute__((noreturn, format(printf, 4, 5))) static void fail_status(const char *call, LiteRtStatus st,
                                                                        const char *note, const char *fmt, ...) {
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (note && strncmp(note, "ERROR: ", 7) == 0) note += 7;
    die("%.*s failed (%s): kLiteRtStatus%s (%d)%s%s", (int)strcspn(call, "("), call, what, status_name(st), (int)st,
        note && note[0] ? "; LiteRT: " : "", note ? note : "");
}

/* Every LiteRT call that returns a status goes through CHECK(call, printf-style context). */
#define CHECK(call, ...)                                                                                              \
    do {                                                                                                              \
        LiteRtStatus st_ = (call);                                                                                    \
        if (st_ != kLiteRtStatusOk) fail_status(#call, st_, NULL, __VA_ARGS__);                                       \
    } while (0)

/* LiteRT's TFLite core prints its own "ERROR: ..." lines on stderr when a model fails to load or compile. Those
   calls run with stderr held in a temporary file: on failure its first line joins our one line, on success it is
   dropped (--verbose leaves stderr alone). */
typedef struct {
    int saved;
    FILE *tmp;
} Held;

static Held hold_stderr(bool verbose) {
    Held h = {-1, NULL};
    if (verbose) return h;
    fflush(stderr);
    h.tmp = tmpfile();
    if (!h.tmp) return h;
    h.saved = dup(STDERR_FILENO);
    if (h.saved < 0 || dup2(fileno(h.tmp), STDERR_FILENO) < 0) {
        if (h.saved >= 0) close(h.saved);
        fclose(h.tmp);
        h.saved = -1;
        h.tmp = NULL;
    }
    return h;
}

/* Restores stderr; the first non-empty line LiteRT wrote meanwhile goes to line (empty if none). */
static void release_stderr(Held *h, char *line, size_t size) {
    line[0] = '\0';
    if (!h->tmp) return;
    fflush(stderr);
    dup2(h->saved, STDERR_FILENO);
    close(h->saved);
    rewind(h->tmp);
    while (line[0] == '\0' && fgets(line, (int)size, h->tmp)) line[strcspn(line, "\r\n")] = '\0';
    fclose(h->tmp);
    h->tmp = NULL;
}

/* A LiteRT call made with stderr held: on failure one line with the status and LiteRT's own first message. */
#define CHECK_HELD(verbose, call, what)                                                                               \
    do {                                                                                                              \
        Held h_ = hold_stderr(verbose);                                                                               \
        LiteRtStatus st_ = (call);                                                                                    \
        char msg_[400];                                                                                               \
        release_stderr(&h_, msg_, sizeof msg_);                                                                       \
        if (st_ != kLiteRtStatusOk) fail_status(#call, st_, msg_, "%s", what);                                 \
    } while (0)

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) die("out of memory");
    return p;
}

static const char *dtype_name(LiteRtElementType t) {
    switch (t) {
    case kLiteRtElementTypeFloat32: return "float32";
    case kLiteRtElementTypeInt32: return "int32";
    case kLiteRtElementTypeInt64: return "int64";
    case kLiteRtElementTypeInt16: return "int16";
    case kLiteRtElementTypeInt8: return "int8";
    case kLiteRtElementTypeUInt8: return "uint8";
    case kLiteRtElementTypeBool: return "bool";
    case kLiteRtElementTypeFloat16: return "float16";
    case kLiteRtElementTypeFloat64: return "float64";
    default: return NULL;
    }
}

static size_t dtype_size(LiteRtElementType t) {
    switch (t) {
    case kLiteRtElementTypeFloat64:
    case kLiteRtElementTypeInt64: return 8;
    case kLiteRtElementTypeFloat32:
    case kLiteRtElementTypeInt32: return 4;
    case kLiteRtElementTypeFloat16:
    case kLiteRtElementTypeInt16: return 2;
    default: return 1;
    }
}

static void tensor_info(Sig *g, LiteRtTensor t, const char *name, const char *kind, Tensor *out) {
    LiteRtTensorTypeId id;
    CHECK(LiteRtGetTensorTypeId(t, &id), "%s %s of %s", kind, name, g->key);
    if (id != kLiteRtRankedTensorType) die("signature %s: %s %s has a dynamic rank", g->key, kind, name);
    CHECK(LiteRtGetRankedTensorType(t, &out->type), "%s %s of %s", kind, name, g->key);
    out->name = name;
    out->dtype = dtype_name(out->type.element_type);
    if (!out->dtype) die("signature %s: %s %s has an unsupported element type %d", g->key, kind, name,
                         (int)out->type.element_type);
    size_t n = dtype_size(out->type.element_type);
    for (unsigned d = 0; d < out->type.layout.rank; d++) {
        int32_t dim = out->type.layout.dimensions[d];
        if (dim < 0) die("signature %s: %s %s has a dynamic dimension", g->key, kind, name);
        n *= (size_t)dim;
    }
    out->nbytes = n;
}

static void load_signatures(void) {
    LiteRtParamIndex n;
    CHECK(LiteRtGetNumModelSignatures(app.model, &n), "model");
    app.sigs = xcalloc(n, sizeof(Sig));
    app.n_sigs = n;
    for (LiteRtParamIndex s = 0; s < n; s++) {
        Sig *g = &app.sigs[s];
        LiteRtSignature sig;
        g->index = s;
        CHECK(LiteRtGetModelSignature(app.model, s, &sig), "signature %zu", (size_t)s);
        CHECK(LiteRtGetSignatureKey(sig, &g->key), "signature %zu", (size_t)s);
        CHECK(LiteRtGetNumSignatureInputs(sig, &g->n_in), "%s", g->key);
        CHECK(LiteRtGetNumSignatureOutputs(sig, &g->n_out), "%s", g->key);
        g->in = xcalloc(g->n_in, sizeof(Tensor));
        g->out = xcalloc(g->n_out, sizeof(Tensor));
        for (size_t i = 0; i < g->n_in; i++) {
            const char *name;
            LiteRtTensor t;
            CHECK(LiteRtGetSignatureInputName(sig, i, &name), "%s input %zu", g->key, i);
            CHECK(LiteRtGetSignatureInputTensorByIndex(sig, i, &t), "%s input %zu", g->key, i);
            tensor_info(g, t, name, "input", &g->in[i]);
        }
        for (size_t i = 0; i < g->n_out; i++) {
            const char *name;
            LiteRtTensor t;
            CHECK(LiteRtGetSignatureOutputName(sig, i, &name), "%s output %zu", g->key, i);
            CHECK(LiteRtGetSignatureOutputTensorByIndex(sig, i, &t), "%s output %zu", g->key, i);
            tensor_info(g, t, name, "output", &g->out[i]);
        }
    }
}

static void print_tensor(const char *kind, const Tensor *t) {
    printf("  %s %s %s %s", kind, t->name, t->dtype, t->type.layout.rank ? "" : "scalar");
    for (unsigned d = 0; d < t->type.layout.rank; d++) printf(d ? ",%d" : "%d", (int)t->type.layout.dimensions[d]);
    printf("\n");
}

static void list_signatures(void) {
    for (size_t s = 0; s < app.n_sigs; s++) {
        printf("signature %s\n", app.sigs[s].key);
        for (size_t i = 0; i < app.sigs[s].n_in; i++) print_tensor("input", &app.sigs[s].in[i]);
        for (size_t i = 0; i < app.sigs[s].n_out; i++) print_tensor("output", &app.sigs[s].out[i]);
    }
}

/* ---- the request file ---- */

typedef struct {
    const uint8_t *p, *end;
} Cursor;

static uint32_t rd_u32(Cursor *c, const char *what) {
    uint32_t v;
    if ((size_t)(c->end - c->p) < sizeof v) die("request file: truncated at %s", what);
    memcpy(&v, c->p, sizeof v);
    c->p += sizeof v;
    return v;
}

static uint64_t rd_u64(Cursor *c, const char *what) {
    uint64_t v;
    if ((size_t)(c->end - c->p) < sizeof v) die("request file: truncated at %s", what);
    memcpy(&v, c->p, sizeof v);
    c->p += sizeof v;
    return v;
}

/* A length-prefixed string, copied into buf (NUL-terminated). */
static const char *rd_str(Cursor *c, char *buf, const char *what) {
    uint32_t n = rd_u32(c, what);
    if (n >= MAX_NAME || (size_t)(c->end - c->p) < n) die("request file: %s has a bad length (%u)", what, n);
    memcpy(buf, c->p, n);
    buf[n] = '\0';
    if (strlen(buf) != n) die("request file: %s contains a NUL byte", what);
    c->p += n;
    return buf;
}

static Sig *find_sig(const char *key) {
    for (size_t s = 0; s < app.n_sigs; s++)
        if (strcmp(app.sigs[s].key, key) == 0) return &app.sigs[s];
    return NULL;
}

static void read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) die("cannot open request file %s: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    app.file = malloc(cap);
    if (!app.file) {
        fclose(f);
        die("out of memory");
    }
    for (;;) {
        if (n == cap) {
            uint8_t *bigger = realloc(app.file, cap *= 2);
            if (!bigger) {
                fclose(f);
                die("out of memory");
            }
            app.file = bigger;
        }
        size_t got = fread(app.file + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) die("cannot read request file %s", path);
    app.file_size = n;
}

/* Parses and checks every request against the model's signatures before anything runs. */
static void parse_requests(const char *path) {
    char name[MAX_NAME], dtype[MAX_NAME];
    read_file(path);
    Cursor c = {app.file, app.file + app.file_size};
    if (app.file_size < 4 || memcmp(app.file, "ERQ1", 4) != 0) die("request file %s: not an ERQ1 file", path);
    c.p += 4;
    uint32_t n = rd_u32(&c, "the request count");
    if (n > app.file_size) die("request file: %u requests cannot fit in %zu bytes", n, app.file_size);
    app.reqs = xcalloc(n, sizeof(Request));
    app.n_reqs = n;
    for (uint32_t r = 0; r < n; r++) {
        Request *q = &app.reqs[r];
        rd_str(&c, name, "a signature name");
        q->sig = find_sig(name);
        if (!q->sig) die("request %u: the model has no signature %s", r, name);
        Sig *g = q->sig;
        q->in = xcalloc(g->n_in, sizeof(Input));
        uint32_t n_in = rd_u32(&c, "an input count");
        for (uint32_t k = 0; k < n_in; k++) {
            rd_str(&c, name, "an input name");
            rd_str(&c, dtype, "an input dtype");
            size_t i = 0;
            while (i < g->n_in && strcmp(g->in[i].name, name) != 0) i++;
            if (i == g->n_in || q->in[i].given)
                die("request %u: %s %s input %s", r, g->key, i == g->n_in ? "has no" : "gives twice the", name);
            q->in[i].given = true;
            const Tensor *t = &g->in[i];
            if (strcmp(dtype, t->dtype) != 0)
                die("request %u: %s input %s is %s, not %s", r, g->key, name, t->dtype, dtype);
            uint64_t nbytes = rd_u64(&c, "an input size");
            if (nbytes == REF_MARK) { /* the output of an earlier request */
                uint32_t from = rd_u32(&c, "a request index");
                rd_str(&c, name, "an output name");
                const Request *src = from < r ? &app.reqs[from] : NULL;
                size_t j = 0;
                while (src && j < src->n_out && strcmp(src->sig->out[src->out_idx[j]].name, name) != 0) j++;
                const Tensor *o = src && j < src->n_out ? &src->sig->out[src->out_idx[j]] : NULL;
                if (!o || strcmp(o->dtype, t->dtype) != 0 || o->nbytes != t->nbytes)
                    die("request %u: input %s refers to output %s of request %u, which is not an earlier wanted "
                        "output of its dtype and size", r, t->name, name, from);
                q->in[i].ref_request = from;
                q->in[i].ref_output = j;
            } else {
                if (nbytes != t->nbytes)
                    die("request %u: %s input %s needs %zu bytes, got %llu", r, g->key, t->name, t->nbytes,
                        (unsigned long long)nbytes);
                if ((uint64_t)(c.end - c.p) < nbytes) die("request file: truncated in request %u input %s", r, t->name);
                q->in[i].data = c.p;
                c.p += nbytes;
            }
        }
        for (size_t i = 0; i < g->n_in; i++)
            if (!q->in[i].given) die("request %u: %s input %s is missing", r, g->key, g->in[i].name);
        q->n_out = rd_u32(&c, "an output count");
        if (q->n_out > g->n_out * 4 + 16) die("request %u: %zu outputs wanted", r, q->n_out);
        q->out_idx = xcalloc(q->n_out, sizeof(size_t));
        q->out_data = xcalloc(q->n_out, sizeof(uint8_t *));
        for (size_t j = 0; j < q->n_out; j++) {
            rd_str(&c, name, "an output name");
            size_t o = 0;
            while (o < g->n_out && strcmp(g->out[o].name, name) != 0) o++;
            if (o == g->n_out) die("request %u: %s has no output %s", r, g->key, name);
            q->out_idx[j] = o;
        }
    }
    if (c.p != c.end) die("request file: %zu bytes after the last request", (size_t)(c.end - c.p));
}

/* ---- running ---- */

static void make_buffers(Sig *g) {
    g->in_buf = xcalloc(g->n_in, sizeof(LiteRtTensorBuffer));
    g->out_buf = xcalloc(g->n_out, sizeof(LiteRtTensorBuffer));
    for (size_t i = 0; i < g->n_in + g->n_out; i++) {
        bool is_in = i < g->n_in;
        size_t k = is_in ? i : i - g->n_in;
        const Tensor *t = is_in ? &g->in[k] : &g->out[k];
        LiteRtTensorBuffer *b = is_in ? &g->in_buf[k] : &g->out_buf[k];
        LiteRtTensorBufferRequirements req; /* owned by the compiled model */
        size_t size;
        if (is_in)
            CHECK(LiteRtGetCompiledModelInputBufferRequirements(app.compiled, g->index, k, &req), "%s %s", g->key,
                  t->name);
        else
            CHECK(LiteRtGetCompiledModelOutputBufferRequirements(app.compiled, g->index, k, &req), "%s %s", g->key,
                  t->name);
        CHECK(LiteRtCreateManagedTensorBufferFromRequirements(app.env, &t->type, req, b), "%s %s", g->key, t->name);
        CHECK(LiteRtGetTensorBufferPackedSize(*b, &size), "%s %s", g->key, t->name);
        if (size != t->nbytes)
            die("signature %s: the buffer of %s holds %zu bytes, the tensor %zu", g->key, t->name, size, t->nbytes);
    }
}

static const uint8_t *input_bytes(const Request *q, size_t i) {
    const Input *in = &q->in[i];
    return in->data ? in->data : app.reqs[in->ref_request].out_data[in->ref_output];
}

/* One call as an app makes it: inputs copied into the tensor buffers, the signature run, the wanted outputs copied
   out into q->out_data. */
static void run_request(Request *q) {
    Sig *g = q->sig;
    void *p;
    if (!g->in_buf) make_buffers(g);
    for (size_t i = 0; i < g->n_in; i++) {
        CHECK(LiteRtLockTensorBuffer(g->in_buf[i], &p, kLiteRtTensorBufferLockModeWrite), "%s", g->in[i].name);
        memcpy(p, input_bytes(q, i), g->in[i].nbytes);
        CHECK(LiteRtUnlockTensorBuffer(g->in_buf[i]), "%s", g->in[i].name);
    }
    CHECK(LiteRtRunCompiledModel(app.compiled, g->index, g->n_in, g->in_buf, g->n_out, g->out_buf), "%s", g->key);
    for (size_t j = 0; j < q->n_out; j++) {
        const Tensor *t = &g->out[q->out_idx[j]];
        if (!q->out_data[j]) q->out_data[j] = xcalloc(1, t->nbytes);
        CHECK(LiteRtLockTensorBuffer(g->out_buf[q->out_idx[j]], &p, kLiteRtTensorBufferLockModeRead), "%s", t->name);
        memcpy(q->out_data[j], p, t->nbytes);
        CHECK(LiteRtUnlockTensorBuffer(g->out_buf[q->out_idx[j]]), "%s", t->name);
    }
}

static void wr(const void *p, size_t n) {
    if (n && fwrite(p, 1, n, app.out) != n) die("cannot write %s: %s", app.out_path, strerror(errno));
}

static void wr_u32(uint32_t v) { wr(&v, sizeof v); }

static void wr_str(const char *s) {
    wr_u32((uint32_t)strlen(s));
    wr(s, strlen(s));
}

static void write_outputs(const char *path) {
    app.out_path = path;
    app.out = fopen(path, "wb");
    if (!app.out) die("cannot create %s: %s", path, strerror(errno));
    wr("ERS1", 4);
    wr_u32(app.n_reqs);
    for (uint32_t r = 0; r < app.n_reqs; r++) {
        const Request *q = &app.reqs[r];
        wr_u32((uint32_t)q->n_out);
        for (size_t j = 0; j < q->n_out; j++) {
            const Tensor *t = &q->sig->out[q->out_idx[j]];
            uint64_t nbytes = t->nbytes;
            wr_str(t->name);
            wr_str(t->dtype);
            wr_u32(t->type.layout.rank);
            wr(t->type.layout.dimensions, sizeof(int32_t) * t->type.layout.rank);
            wr(&nbytes, sizeof nbytes);
            wr(q->out_data[j], t->nbytes);
        }
    }
    FILE *f = app.out;
    app.out = NULL;
    if (fclose(f) != 0) {
        remove(path);
        die("cannot write %s", path);
    }
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The percentile with linear interpolation between the closest ranks (numpy's default). */
static double percentile(const double *sorted, size_t n, double p) {
    double pos = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)pos;
    size_t hi = lo + 1 < n ? lo + 1 : lo;
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

/* Each signature's first request, called n times after a warm-up of max(10, n / 10) calls. */
static void bench(long n, int threads) {
    app.samples = xcalloc((size_t)n, sizeof(double));
    for (size_t s = 0; s < app.n_sigs; s++) {
        Request *q = NULL;
        for (uint32_t r = 0; r < app.n_reqs && !q; r++)
            if (app.reqs[r].sig == &app.sigs[s]) q = &app.reqs[r];
        if (!q) continue;
        long warm = n / 10 > 10 ? n / 10 : 10;
        for (long i = 0; i < warm; i++) run_request(q);
        double total = 0;
        for (long i = 0; i < n; i++) {
            double t0 = now_us();
            run_request(q);
            app.samples[i] = now_us() - t0;
            total += app.samples[i];
        }
        qsort(app.samples, (size_t)n, sizeof(double), cmp_double);
        printf("bench %s calls=%ld warmup=%ld threads=%d p50_us=%.3f p99_us=%.3f mean_us=%.3f\n", app.sigs[s].key, n,
               warm, threads, percentile(app.samples, (size_t)n, 50), percentile(app.samples, (size_t)n, 99),
               total / (double)n);
    }
}

/* CPU accelerator options: LiteRT reads them as opaque options with the identifier "xnnpack" and a TOML string
   payload (litert/c/options/litert_cpu_options.cc, LrtGetOpaqueCpuOptionsData; the Lrt* helpers are not exported by
   libLiteRt.so, so the payload is built here). */
static void add_cpu_options(int threads) {
    char *toml = xcalloc(64, 1);
    LiteRtOpaqueOptions opaque = NULL;
    snprintf(toml, 64, "num_threads = %d\n", threads);
    LiteRtStatus st = LiteRtCreateOpaqueOptions("xnnpack", toml, free, &opaque);
    if (st != kLiteRtStatusOk) {
        free(toml);
        die("LiteRtCreateOpaqueOptions failed: kLiteRtStatus%s (%d)", status_name(st), (int)st);
    }
    st = LiteRtAddOpaqueOptions(app.options, opaque);
    if (st != kLiteRtStatusOk) {
        LiteRtDestroyOpaqueOptions(opaque);
        die("LiteRtAddOpaqueOptions failed: kLiteRtStatus%s (%d)", status_name(st), (int)st);
    }
}

static long parse_long(const char *s, const char *what, long lo, long hi) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi)
        die("%s must be an integer in [%ld, %ld]", what, lo, hi);
    return v;
}

static void usage(void) {
    die("usage: bundle_client MODEL (--list | REQUESTS [OUT] [--bench N]) [--threads N] [--verbose]");
}

int main(int argc, char **argv) {
    const char *pos[3] = {NULL, NULL, NULL};
    int n_pos = 0, threads = 1;
    long bench_n = 0;
    bool list = false, verbose = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--list") == 0) {
            list = true;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = true;
        } else if (strcmp(argv[i], "--bench") == 0 && i + 1 < argc) {
            bench_n = parse_long(argv[++i], "--bench", 1, 100000000);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            threads = (int)parse_long(argv[++i], "--threads", 1, 256);
        } else if (argv[i][0] == '-' && argv[i][1] == '-') {
            usage();
        } else if (n_pos < 3) {
            pos[n_pos++] = argv[i];
        } else {
            usage();
        }
    }
    const char *model_path = pos[0], *requests = pos[1], *out = pos[2];
    if (!model_path || (list ? n_pos != 1 : !requests || (!out && !bench_n))) usage();

    FILE *probe = fopen(model_path, "rb"); /* a clear message for the commonest mistake */
    if (!probe) die("cannot open model %s: %s", model_path, strerror(errno));
    fclose(probe);

    LiteRtEnvOption env_options[2] = {
        {kLiteRtEnvOptionTagAutoRegisterAccelerators,
         {.type = kLiteRtAnyTypeInt, .int_value = kLiteRtHwAcceleratorCpu}}, /* no GPU / NPU library probing */
        {kLiteRtEnvOptionTagMinLoggerSeverity,
         {.type = kLiteRtAnyTypeInt, .int_value = verbose ? kLiteRtLogSeverityWarning : kLiteRtLogSeveritySilent}},
    };
    CHECK(LiteRtCreateEnvironment(2, env_options, &app.env), "CPU only");
    CHECK_HELD(verbose, LiteRtCreateModelFromFile(app.env, model_path, &app.model), model_path);
    load_signatures();
    if (list) {
        list_signatures();
        app_free();
        return 0;
    }
    parse_requests(requests); /* every request checked before the model is compiled */

    CHECK(LiteRtCreateOptions(&app.options), "compilation options");
    CHECK(LiteRtSetOptionsHardwareAccelerators(app.options, kLiteRtHwAcceleratorCpu), "CPU");
    add_cpu_options(threads);
    CHECK_HELD(verbose, LiteRtCreateCompiledModel(app.env, app.model, app.options, &app.compiled), model_path);
    LiteRtDestroyOptions(app.options); /* the caller owns the options; the compiled model keeps what it needs */
    app.options = NULL;

    for (uint32_t r = 0; r < app.n_reqs; r++) run_request(&app.reqs[r]);
    if (out) write_outputs(out);
    if (bench_n) bench(bench_n, threads);
    app_free();
    return 0;
}
