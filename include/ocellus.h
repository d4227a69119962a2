/* ocellus.h — vision-language models in C.
 *
 * The one public header. Link with -locellus (pkg-config ocellus).
 *
 * Basic usage:
 *
 *     oc_model *m = NULL;
 *     if (oc_model_load("SmolVLM-256M-Instruct", NULL, &m) != OC_OK) {
 *         fprintf(stderr, "%s\n", oc_last_error());
 *         return 1;
 *     }
 *     oc_image *img = NULL;
 *     oc_image_load("photo.jpg", NULL, &img);
 *     oc_answer ans;
 *     if (oc_ask(m, (const oc_image *const[]){img}, 1, "What is in the picture?",
 *                NULL, &ans) == OC_OK)
 *         printf("%s\n", ans.text);
 *     oc_answer_free(&ans);
 *     oc_image_free(img);
 *     oc_model_free(m);
 *
 * Conventions
 *  - Every call returns an oc_status. On failure oc_last_error() gives a sentence that
 *    says what was wrong and where; it is thread-local and valid until the next failing
 *    call on the same thread.
 *  - Output pointers are written only on success; on failure nothing needs freeing.
 *  - Every *_free accepts NULL.
 *  - The library never prints and never exits; set a log callback to see its messages.
 *  - oc_model is immutable once loaded and may be shared by threads; an oc_session is
 *    used by one thread at a time.
 *  - Parameter structs come from oc_*_default_params(); fields are only ever appended.
 */
#ifndef OCELLUS_H
#define OCELLUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define OCELLUS_VERSION "0.1.0"

/* Marks the functions the shared library exports; everything else in it is hidden (built
 * with -fvisibility=hidden), so that an application's own copy of a library ocellus uses
 * inside (stb_image, say) never meets ocellus's. */
#if defined(__GNUC__) || defined(__clang__)
#define OC_API __attribute__((visibility("default")))
#else
#define OC_API
#endif

/* ---- status and errors -------------------------------------------------------- */

typedef enum {
    OC_OK = 0,
    OC_ERR_INVALID_ARG = 1, /* a NULL pointer, a bad parameter value */
    OC_ERR_IO = 2,          /* a file that cannot be opened or read or written */
    OC_ERR_FORMAT = 3,      /* a file whose contents are malformed */
    OC_ERR_UNSUPPORTED = 4, /* a valid file of a kind ocellus does not handle */
    OC_ERR_NOMEM = 5,       /* an allocation failed */
    OC_ERR_LIMIT = 6,       /* an input over a configured limit (pixels, tokens, ...) */
    OC_ERR_CANCELLED = 7,   /* a callback asked to stop */
    OC_ERR_INTERNAL = 8,    /* a bug in ocellus */
} oc_status;

/* A constant name for a status ("OC_ERR_FORMAT"). */
OC_API const char *oc_status_str(oc_status s);

/* The sentence describing the last failure on this thread ("" if none). */
OC_API const char *oc_last_error(void);

typedef enum { OC_LOG_DEBUG = 0, OC_LOG_INFO = 1, OC_LOG_WARN = 2 } oc_log_level;
typedef void (*oc_log_fn)(oc_log_level level, const char *msg, void *user_data);
/* Process-wide log sink; NULL (the default) discards messages. */
OC_API void oc_set_log_callback(oc_log_fn fn, void *user_data);

/* The thread count of models and trainers whose params ask for the default (n_threads
 * <= 0): n_threads, or all online CPUs when <= 0 (the initial state). It never changes
 * a model already loaded; each model, session and trainer has its own threads. */
OC_API void oc_set_threads(int n_threads);

/* ---- images ------------------------------------------------------------------- */

typedef struct oc_image oc_image;

typedef struct {
    uint64_t max_pixels;   /* width * height limit; default 89,478,485 (Pillow's
                              MAX_IMAGE_PIXELS). The decoder's buffer (width * height *
                              channels * bytes per sample) is held to 3 * max_pixels bytes,
                              both before anything is decoded. */
    uint32_t max_side;     /* limit on either side; default 32768 */
    uint64_t max_file_bytes; /* default 512 MiB */
} oc_image_limits;

OC_API oc_image_limits oc_image_default_limits(void);

/* Decodes JPEG, PNG, BMP, GIF (first frame), TGA, PNM; converts to 8-bit RGB as
 * PIL's convert("RGB") does (alpha dropped, grey replicated). limits may be NULL.
 * path "-" reads standard input. Caller frees *out with oc_image_free. */
OC_API oc_status oc_image_load(const char *path, const oc_image_limits *limits,
                               oc_image **out);
OC_API oc_status oc_image_load_memory(const void *data, size_t size, const char *name,
                                      const oc_image_limits *limits, oc_image **out);
/* Copies width*height*3 bytes of interleaved RGB. */
OC_API oc_status oc_image_from_rgb(const uint8_t *rgb, uint32_t width, uint32_t height,
                                   oc_image **out);
OC_API uint32_t oc_image_width(const oc_image *img);
OC_API uint32_t oc_image_height(const oc_image *img);
OC_API const uint8_t *oc_image_rgb(const oc_image *img); /* height rows of width*3 bytes */
OC_API void oc_image_free(oc_image *img);

/* ---- models ------------------------------------------------------------------- */

typedef struct oc_model oc_model;

/* How weights are held and multiplied, chosen at load from any stored dtype. */
typedef enum {
    OC_WEIGHTS_AUTO = 0,  /* as stored (F32, F16 or BF16), every product in F32: exact;
                             a GGUF's Q8_0 as stored, its other quantized types as Q8_0 */
    OC_WEIGHTS_F32 = 1,   /* converted to F32 at load (mapped when stored F32) */
    OC_WEIGHTS_BF16 = 2,  /* BF16 (mapped when stored BF16); matrix products with
                             activations rounded to BF16 (AVX512-BF16 where present) */
    OC_WEIGHTS_Q8_0 = 3,  /* the language model in llama.cpp's Q8_0 (blocks of 32 int8
                             and a scale), products with activations quantized the same
                             way (VNNI dot products); matrices whose width is not a
                             multiple of 32 stay as stored; the vision tower and projector
                             as stored (as llama.cpp keeps an mmproj in F16) */
} oc_weight_format;

typedef struct {
    int n_threads;             /* threads of this model's sessions; <= 0: the default */
    oc_image_limits image_limits;
    uint32_t max_images;       /* per prompt; default 16 */
    uint32_t max_tiles;        /* per image; default 64 */
    uint32_t max_context;      /* 0: the model's max_position_embeddings */
    oc_weight_format weights;  /* default OC_WEIGHTS_AUTO */
    int fixed_threads;         /* 1: always all n_threads; 0 (default): a call runs on one
                                  thread instead while that measures faster (a machine
                                  others share); the results are the same bits either way */
    const char *mmproj;        /* GGUF: the mmproj file (vision encoder + projector) of a
                                  text GGUF; NULL: the one mmproj beside it */
} oc_model_params;

OC_API oc_model_params oc_model_default_params(void);

/* Loads a model: a Hugging Face folder (config.json, *.safetensors, tokenizer.json,
 * preprocessor_config.json) of the SmolVLM / Idefics3, LLaVA-1.5, Qwen2.5-VL or Gemma 3
 * family, or llama.cpp's GGUF pair (SmolVLM, LLaVA): path is the text GGUF (with
 * params->mmproj, or the one mmproj GGUF in its folder) or a folder holding one text GGUF
 * and one mmproj. GGUF tensors in F32, F16, BF16 and Q8_0 are used in place; Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K and Q6_K are converted at load, to Q8_0 when params->weights is
 * OC_WEIGHTS_AUTO or OC_WEIGHTS_Q8_0, else to F32 (then to BF16 if asked). params may be
 * NULL. Caller frees *out with oc_model_free. */
OC_API oc_status oc_model_load(const char *dir, const oc_model_params *params,
                               oc_model **out);
OC_API void oc_model_free(oc_model *model);

/* A short description ("smolvlm: vision 2x64, text 2x64, vocab 360"), owned by model. */
OC_API const char *oc_model_describe(const oc_model *model);

/* ---- generation --------------------------------------------------------------- */

/* Progress of the steps before the first token, which take seconds on a CPU: encoding
 * an image's tiles (done, total tiles) and prefilling the prompt (tokens). Return
 * non-zero to stop: the call then returns OC_ERR_CANCELLED. */
typedef enum { OC_PROGRESS_IMAGE = 0, OC_PROGRESS_PROMPT = 1 } oc_progress_stage;
typedef int (*oc_progress_fn)(oc_progress_stage stage, uint64_t done, uint64_t total,
                              void *user_data);

/* Called with each piece of text as soon as it is complete UTF-8. Return non-zero to
 * stop generation (the call then returns OC_ERR_CANCELLED with what was made so far). */
typedef int (*oc_token_fn)(const char *piece, int32_t token_id, void *user_data);

typedef struct {
    uint32_t max_tokens;       /* default 256 */
    float temperature;         /* 0 = greedy (default) */
    uint32_t top_k;            /* 0 = off */
    float top_p;               /* 1 = off */
    float repetition_penalty;  /* 1 = off (transformers' semantics) */
    uint64_t seed;             /* sampling seed */
    oc_token_fn on_token;      /* optional streaming callback */
    void *user_data;
    int ignore_eos;            /* 1: generate max_tokens regardless (benchmarks) */
    oc_progress_fn on_progress; /* optional: image encoding and prefill progress */
    void *progress_user_data;
} oc_gen_params;

OC_API oc_gen_params oc_gen_default_params(void);

typedef struct {
    double image_ms;           /* preprocessing + vision encoder + connector */
    uint32_t n_tiles;          /* images fed to the vision encoder */
    double prompt_ms;          /* prefill of the prompt */
    uint32_t prompt_tokens;
    double gen_ms;             /* decoding of generated tokens */
    uint32_t gen_tokens;
    double image_flops;        /* matrix-product FLOPs of the image encoding (2*M*N*K,
                                  attention included) */
    double prompt_flops;       /* the same for the prefill */
    double first_token_ms;     /* from the call to the first generated token */
} oc_timings;

typedef struct {
    char *text;                /* generated text, NUL-terminated */
    int32_t *tokens;           /* generated token ids (stop token excluded) */
    size_t n_tokens;
    int stopped_by_eos;        /* 1 if an end token ended generation */
    oc_timings timings;
} oc_answer;

OC_API void oc_answer_free(oc_answer *ans); /* frees the fields, not the struct */

/* Captions one image ("Describe this image." for chat models). params may be NULL. */
OC_API oc_status oc_caption(const oc_model *model, const oc_image *image,
                            const oc_gen_params *params, oc_answer *out);

/* Answers a question about n_images images (0 allowed) in one call. */
OC_API oc_status oc_ask(const oc_model *model, const oc_image *const *images,
                        size_t n_images, const char *question, const oc_gen_params *params,
                        oc_answer *out);

/* ---- sessions: multi-turn chat ------------------------------------------------ */

typedef struct oc_session oc_session;

OC_API oc_status oc_session_new(const oc_model *model, oc_session **out);
OC_API void oc_session_free(oc_session *s);
/* Adds a user turn (with images) and generates the assistant's reply; the conversation
 * and its KV cache are kept for the next turn. */
OC_API oc_status oc_session_ask(oc_session *s, const oc_image *const *images,
                                size_t n_images, const char *question,
                                const oc_gen_params *params, oc_answer *out);
OC_API void oc_session_reset(oc_session *s);

/* ---- debugging: compare with transformers ------------------------------------- */

typedef struct {
    const char *pixel_values_file;   /* optional: feed pixel values from a safetensors */
    const char *pixel_values_tensor; /* tensor name in that file */
} oc_inspect_params;

/* Runs preprocessing, the vision encoder, the connector and one forward pass of the
 * prompt (question about the images, in the chat format), and writes the intermediate
 * tensors to dump_path as safetensors (pixel_values, input_ids, vision_last_hidden_state,
 * image_hidden_states, logits). */
OC_API oc_status oc_inspect(const oc_model *model, const oc_image *const *images,
                            size_t n_images, const char *question,
                            const oc_inspect_params *params, const char *dump_path);

/* ---- tokenizer ---------------------------------------------------------------- */

typedef struct oc_tokenizer oc_tokenizer;

/* path: a tokenizer.json (Hugging Face tokenizers' format with a BPE model: the Llama 2,
 * Llama 3, Qwen, SmolLM/SmolVLM and GPT-2 families) or a model folder holding one.
 * Errors name the file and the problem; component types ocellus does not implement give
 * OC_ERR_UNSUPPORTED. A tokenizer may be shared by threads. Free with oc_tokenizer_free. */
OC_API oc_status oc_tokenizer_load(const char *path, oc_tokenizer **out);
OC_API void oc_tokenizer_free(oc_tokenizer *tok);
OC_API const oc_tokenizer *oc_model_tokenizer(const oc_model *model);
/* Encodes len bytes of UTF-8 text (NULs allowed) as tokenizers' encode() does;
 * add_special applies the post-processor (BOS etc.: transformers' add_special_tokens).
 * Text that is not valid UTF-8 gives OC_ERR_INVALID_ARG.
 * *ids is malloc'd (also when *n_ids is 0); free with oc_free. */
OC_API oc_status oc_tokenize(const oc_tokenizer *tok, const char *text, size_t len,
                             int add_special, int32_t **ids, size_t *n_ids);
/* Decodes ids to UTF-8 as tokenizers' decode() does: special added tokens are dropped
 * unless keep_special (skip_special_tokens = !keep_special), ids without a token are
 * skipped, bytes that do not form UTF-8 become U+FFFD. *text: free with oc_free. */
OC_API oc_status oc_detokenize(const oc_tokenizer *tok, const int32_t *ids, size_t n_ids,
                               int keep_special, char **text);
/* As oc_detokenize, also giving the length: the text may hold NUL bytes (a byte-level
 * tokenizer's token for byte 0), which a NUL-terminated string alone would cut. *text is
 * NUL-terminated as well (text[*len] == 0); free it with oc_free. */
OC_API oc_status oc_detokenize_bytes(const oc_tokenizer *tok, const int32_t *ids,
                                     size_t n_ids, int keep_special, char **text,
                                     size_t *len);
/* The vocabulary string of an id ("▁Hello", "Ġworld", "<s>"), owned by tok, or NULL. */
OC_API const char *oc_token_piece(const oc_tokenizer *tok, int32_t id);
/* One more than the largest id of the vocabulary and the added tokens. */
OC_API size_t oc_tokenizer_vocab_size(const oc_tokenizer *tok);

OC_API void oc_free(void *p);

/* ---- benchmarks ------------------------------------------------------------------ */

/* What this machine allows, for quoting benchmark figures as fractions of it. */
typedef struct {
    int threads;              /* threads measured at once */
    double fma_peak_gflops;   /* FP32 FMA throughput of all of them, with the widest
                                 vectors the kernels use */
    double fma_one_gflops;    /* the same with one thread alone */
    double read_gb_s;         /* read bandwidth from a 1 GiB buffer, all threads */
    int shared_core;          /* 1: with two or more threads each ran much slower than one
                                 alone (virtual CPUs sharing a physical core, or others'
                                 load): quote ratios, not absolute figures */
    char cpu[64];             /* the kernels in use, e.g. "avx512+bf16+vnni+amx" */
} oc_machine_limits;

/* Measures them (about a second; allocates 1 GiB). n_threads <= 0: the default count. */
OC_API oc_status oc_measure_machine(int n_threads, oc_machine_limits *out);

/* Bytes of weights a model reads per decoded token (every matrix of the text model and
 * the LM head, in the format loaded) and per image tile (the vision tower and projector);
 * either may be NULL. */
OC_API void oc_model_weight_bytes(const oc_model *model, uint64_t *text_per_token,
                           uint64_t *vision_per_tile);

/* ---- random models for benchmarks -------------------------------------------- */

/* Writes a model folder with random weights (N(0, 1/fan_in)) and the shapes of a named
 * preset: "smolvlm-256m" (SmolVLM-256M-Instruct) or "smolvlm-tiny". dtype: "F32",
 * "BF16" or "F16". The folder is replaced as a whole, as oc_trainer_save's. */
OC_API oc_status oc_write_random_model(const char *preset, const char *dtype, uint64_t seed,
                                       const char *out_dir);

/* ---- training ---- */

/* Training of SmolVLM-family models (SigLIP-style ViT + pixel-shuffle connector + Llama)
 * on the CPU, matching transformers + torch.optim.AdamW. All parameters are F32.
 *
 *     oc_train_params tp = oc_train_default_params();
 *     tp.steps = 1000;
 *     oc_trainer *tr;
 *     if (oc_trainer_new("SmolVLM-256M-Instruct", &tp, &tr) != OC_OK) ...
 *     for (...) oc_trainer_step(tr, examples, n, &stats);  // one optimizer step each
 *     oc_trainer_save(tr, "out");
 *     oc_trainer_free(tr);
 */

typedef struct oc_trainer oc_trainer;

/* The label of a position that is not trained (transformers' ignore_index). */
#define OC_IGNORE_INDEX (-100)

/* One training sequence. labels[t] is the target of position t (transformers' labels,
 * unshifted): position t-1 is trained to predict labels[t]; OC_IGNORE_INDEX ignores it. Every
 * input_ids[t] == image_token_id stands for one image feature: the example must hold
 * n_tiles * image_seq of them, filled in order (tile 0's tokens first). pixel_values is
 * (n_tiles, 3, image_size, image_size), already preprocessed (NULL when n_tiles is 0). */
typedef struct {
    const int32_t *input_ids;  /* (n_tokens) */
    const int32_t *labels;     /* (n_tokens) */
    size_t n_tokens;
    const float *pixel_values; /* (n_tiles, 3, S, S) */
    uint32_t n_tiles;
} oc_train_example;

typedef struct {
    uint64_t step;           /* optimizer steps done, this one included */
    uint64_t total_steps;    /* params.steps */
    double loss;             /* mean cross-entropy over the step's labelled positions */
    double grad_norm;        /* global gradient norm before clipping */
    double lr;               /* learning rate this step used */
    uint64_t tokens;         /* tokens in this step's examples */
    uint64_t labelled;       /* positions that counted in the loss */
    double flops;            /* forward + backward FLOPs of this step: 2*M*N*K for every
                                matrix product run (attention included; elementwise ops
                                and the optimizer not counted) */
    double total_flops;      /* FLOPs since training began (carried across resumes) */
    double seconds;          /* wall time of this step */
    int threads;             /* threads the step ran on: all of the trainer's, or one when
                                that measured faster (a busy machine); the results are the
                                same bits either way */
    /* data-parallel runs (MPI, oc_dist_init): the step's counts (loss, tokens, labelled,
       flops, grad_norm) are those of the whole global batch, over every rank */
    double comm_seconds;     /* seconds of the step in exchanges between ranks (gradients,
                                parameters, counts; waits for slower ranks included); 0
                                alone */
    int ranks;               /* processes the step ran on (1 alone) */
    /* preference steps (oc_trainer_pref_step; 0 for SFT steps), means over the step's
     * pairs: loss is then the preference loss, labelled the replies' tokens */
    uint64_t pairs;          /* pairs in this step */
    double reward_chosen;    /* the implicit reward of the chosen replies (DPO: beta *
                                (log pi - log ref); SimPO: beta * mean log pi per token;
                                ORPO: lambda * mean log pi per token) */
    double reward_rejected;  /* the same of the rejected replies */
    double reward_margin;    /* reward_chosen - reward_rejected */
    double pref_accuracy;    /* fraction of pairs whose chosen reward is the larger */
} oc_train_stats;

/* Called after every step; return non-zero to ask oc_trainer_fit to stop. */
typedef int (*oc_train_progress_fn)(const oc_train_stats *stats, void *user_data);

typedef enum {
    OC_SCHED_COSINE = 0,     /* transformers' get_cosine_schedule_with_warmup */
    OC_SCHED_LINEAR = 1,     /* get_linear_schedule_with_warmup */
    OC_SCHED_CONSTANT = 2,   /* get_constant_schedule_with_warmup */
} oc_lr_schedule;

/* What a step optimises. SFT: next-token cross-entropy (oc_trainer_step). The others
 * learn from pairs of replies to one prompt, one preferred (oc_trainer_pref_step):
 * DPO against a frozen reference model's log-probabilities; SimPO and ORPO need none. */
typedef enum {
    OC_OBJECTIVE_SFT = 0,
    OC_OBJECTIVE_DPO = 1,    /* -log sigmoid(beta * ((pc - rc) - (pr - rr))) */
    OC_OBJECTIVE_SIMPO = 2,  /* -log sigmoid(beta * (pc / nc - pr / nr) - gamma) */
    OC_OBJECTIVE_ORPO = 3,   /* -pc / nc - lambda * log sigmoid(log odds(pc / nc) -
                                log odds(pr / nr)), odds(a) = exp(a) / (1 - exp(a)) */
} oc_objective;

typedef struct {
    double lr;               /* peak learning rate; default 1e-3 */
    double vision_lr_scale;  /* multiplies lr for the vision tower and the connector;
                                0 or 1 (default): the same lr everywhere */
    double beta1, beta2;     /* default 0.9, 0.95 */
    double eps;              /* default 1e-8 */
    double weight_decay;     /* decoupled (AdamW); default 0.1 */
    int no_decay_1d;         /* 1: no decay on biases and norm weights; default 0 (torch:
                                every parameter given to the optimizer decays) */
    oc_lr_schedule schedule; /* default OC_SCHED_COSINE */
    uint64_t warmup_steps;   /* linear warmup from 0; default 0 */
    uint64_t steps;          /* total optimizer steps (the schedule ends there); 1000 */
    double clip;             /* max global gradient norm; 0 = off; default 1.0 */
    uint32_t batch;          /* examples per micro-batch (packed, no padding); default 1 */
    uint32_t grad_accum;     /* micro-batches per step; default 1. A step's loss is the
                                mean over all its labelled positions, whatever the split. */
    uint64_t seed;           /* initialisation of fresh models; default 0 */
    float init_std;          /* fresh models: N(0, std) weights; 0 = the config's
                                initializer_range (0.02 if absent) */
    const char *out_dir;     /* oc_trainer_fit saves here (NULL: no saving) */
    uint64_t save_every;     /* oc_trainer_fit: steps between checkpoints; 0 = at the end */
    const char *dump_first_step; /* optional .safetensors: the first step's loss, gradients
                                    ("grad.<name>") and parameters after it ("param.<name>") */
    oc_train_progress_fn on_progress;
    void *user_data;
    int n_threads;           /* threads of this trainer; <= 0: the default (oc_set_threads,
                                else all CPUs) */
    int dist_alone;          /* 1: train in this process alone even when the job has several
                                (oc_dist_init); default 0: data-parallel over all of them
                                (one rung of a scaling ladder per rank uses 1) */
    /* preference optimisation (p, r: summed log-probabilities of the chosen and rejected
     * replies under the policy, rc, rr under the reference; nc, nr their token counts) */
    oc_objective objective;  /* default OC_OBJECTIVE_SFT */
    double pref_beta;        /* DPO's and SimPO's beta; 0 (default): 0.1 for DPO, 2.0
                                for SimPO */
    double simpo_gamma;      /* SimPO's target margin gamma; default 0.5 */
    double orpo_lambda;      /* ORPO's weight of the odds-ratio term; default 0.1 */
    double rpo_alpha;        /* DPO and SimPO: plus rpo_alpha x the chosen reply's mean
                                negative log-likelihood per token (TRL's rpo_alpha, RPO:
                                Pang et al. 2024), which keeps the chosen replies' own
                                probability rising; default 0: none */
} oc_train_params;

OC_API oc_train_params oc_train_default_params(void);

/* What a data pipeline needs to know about the model being trained. */
typedef struct {
    uint32_t image_size;     /* tile side S */
    uint32_t image_seq;      /* <image> tokens per tile */
    int32_t image_token_id;
    uint32_t vocab;
    size_t n_params;
    uint64_t step;           /* optimizer steps done */
    size_t optimizer_bytes;  /* the AdamW moments this process keeps: 8 bytes a parameter
                                alone, its shard's in a job of N ranks (about 1/N) */
    int ranks;               /* processes the trainer spans (1 alone) */
} oc_trainer_info;

/* Starts from the weights of a model folder (config.json + safetensors, any float
 * dtype). params may be NULL (defaults); strings in it are copied. */
OC_API oc_status oc_trainer_new(const char *model_dir, const oc_train_params *params,
                                oc_trainer **out);
/* Starts from random weights (params->seed, params->init_std) for a config: a folder
 * holding config.json, or the path of a config.json. */
OC_API oc_status oc_trainer_new_from_config(const char *config_path,
                                            const oc_train_params *params,
                                            oc_trainer **out);
/* Continues from a checkpoint folder written by oc_trainer_save: weights, optimizer
 * moments, step count and FLOP count, so that N steps == N/2 + save + resume + N/2
 * bit for bit. */
OC_API oc_status oc_trainer_resume(const char *checkpoint_dir,
                                   const oc_train_params *params,
                                   oc_trainer **out);

OC_API oc_trainer_info oc_trainer_get_info(const oc_trainer *tr);

/* One optimizer step on n examples (params.batch * params.grad_accum, typically): they
 * are split into micro-batches of params.batch, gradients summed, clipped, then AdamW.
 * stats may be NULL. On failure the parameters are unchanged. */
OC_API oc_status oc_trainer_step(oc_trainer *tr, const oc_train_example *examples, size_t n,
                                 oc_train_stats *stats);
/* Mean loss over the labelled positions of n examples, without updating anything. */
OC_API oc_status oc_trainer_eval(oc_trainer *tr, const oc_train_example *examples, size_t n,
                                 double *loss);

/* Writes a checkpoint folder: config.json, model.safetensors (F32, transformers' names,
 * loadable by transformers and oc_model_load), optimizer.safetensors (for
 * oc_trainer_resume), and the tokenizer and processor files of the folder training
 * started from, when it has them. The folder is replaced as a whole (written beside it,
 * then swapped in with one rename): after a failure, a kill or a power cut dir is the
 * previous checkpoint or the new one, never a mix; files in dir that a checkpoint does
 * not hold are kept. A second process writing dir fails at once ("DIR is being written
 * by process N"). Parent folders are created. */
OC_API oc_status oc_trainer_save(oc_trainer *tr, const char *dir);

/* Fills examples[0..n) for the next step; the arrays they point to must stay valid until
 * the next call. Return non-OK to stop (the status is passed on). */
typedef oc_status (*oc_train_batch_fn)(oc_train_example *examples, size_t n,
                                       void *user_data);
/* Runs steps until params.steps, asking next_batch for batch * grad_accum examples per
 * step, saving to params.out_dir every save_every steps and at the end (also when the
 * progress callback stops it: then OC_ERR_CANCELLED means that save succeeded, any other
 * failure that it did not). out_dir is locked for the whole run. */
OC_API oc_status oc_trainer_fit(oc_trainer *tr, oc_train_batch_fn next_batch,
                                void *user_data);

/* Data-parallel training (docs/DISTRIBUTED.md). A trainer made after oc_dist_init in a job
 * of several processes (and params.dist_alone 0) is one of the job's ranks: construction,
 * oc_trainer_step, oc_trainer_save and oc_trainer_fit are then collective (every rank calls
 * them, in the same order), and a step's examples are split among the ranks: rank r takes
 * examples [first, first + count) of the step's n (oc_trainer_part), packs them into
 * micro-batches of params.batch, and the gradients are summed over the ranks in rank order
 * (same rank count, same bits). The global batch, schedule and loss are those of one
 * process given the n examples. Each rank keeps the AdamW moments of its own shard of the
 * parameters only (ZeRO-1: the optimizer's memory per rank falls with the rank count);
 * oc_trainer_save gathers them, and rank 0 alone writes the checkpoint, which resumes on
 * any rank count. */
OC_API void oc_trainer_part(const oc_trainer *tr, size_t n, size_t *first, size_t *count);

/* Fills examples[0..count) with examples [first, first + count) of the next step's n; the
 * next call is for the step after. As oc_train_batch_fn otherwise. */
typedef oc_status (*oc_train_part_fn)(oc_train_example *examples, size_t n, size_t first,
                                      size_t count, void *user_data);
/* oc_trainer_fit that asks each rank only for its part of every step (oc_trainer_fit asks
 * every rank for all n examples and each keeps its part: right for any source, but every
 * rank then loads every example). Alone, the part is the whole step. */
OC_API oc_status oc_trainer_fit_parts(oc_trainer *tr, oc_train_part_fn next_part,
                                      void *user_data);

OC_API void oc_trainer_free(oc_trainer *tr);

/* ---- preference optimisation: DPO, SimPO, ORPO ---- */

/* One preference pair: two replies to the same prompt and images, encoded as training
 * examples whose labels cover the reply only (its text and end-of-turn token). */
typedef struct {
    oc_train_example chosen, rejected;
    double ref_chosen, ref_rejected; /* DPO: the reference model's summed log-probability
                                        of each reply (oc_trainer_logprobs); unused by
                                        SimPO and ORPO */
} oc_pref_example;

/* logp[i] = sum over the labelled positions t of example i of log p(labels[t] | tokens
 * before t): the log-probability of its labelled tokens under the current weights, by
 * the same forward pass training runs (natural log; double sums of float terms).
 * n_tokens (optional) receives each example's labelled count. Updates nothing. */
OC_API oc_status oc_trainer_logprobs(oc_trainer *tr, const oc_train_example *examples,
                                     size_t n, double *logp, size_t *n_tokens);

/* One optimizer step of params.objective (DPO, SimPO or ORPO) on n pairs (params.batch *
 * params.grad_accum, typically): micro-batches of params.batch pairs, both replies of a
 * pair packed into the same one; the loss is the mean over the pairs. Clipping, the
 * schedule and AdamW as for oc_trainer_step; stats gets the loss, the mean rewards, the
 * margin and the preference accuracy. On failure the parameters are unchanged. On
 * several ranks (see oc_trainer_part) it is collective: every rank passes the same n pairs
 * and computes its block of them; the gradients and the step's sums are added over the
 * ranks in rank order, so the step is one process's. */
OC_API oc_status oc_trainer_pref_step(oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                                      oc_train_stats *stats);

/* The preference loss, mean rewards, margin and accuracy of n pairs under the current
 * weights (stats->pairs, loss, reward_*, pref_accuracy, tokens, labelled, step), without
 * updating anything: validation. */
OC_API oc_status oc_trainer_pref_eval(oc_trainer *tr, const oc_pref_example *pairs, size_t n,
                                      oc_train_stats *stats);

/* Fills pairs[0..n) for the next step (arrays valid until the next call). */
typedef oc_status (*oc_pref_batch_fn)(oc_pref_example *pairs, size_t n, void *user_data);

/* oc_trainer_fit for preference objectives: batch * grad_accum pairs per step. */
OC_API oc_status oc_trainer_fit_pref(oc_trainer *tr, oc_pref_batch_fn next_batch,
                                     void *user_data);

/* ---- data: synthetic scenes and datasets ---- */

typedef enum { OC_SPLIT_TRAIN = 0, OC_SPLIT_VAL = 1, OC_SPLIT_TEST = 2 } oc_split;

/* "train", "val", "test"; oc_split_parse returns -1 for another name. */
OC_API const char *oc_split_name(oc_split split);
OC_API int oc_split_parse(const char *name);

#define OC_SHAPES_QUESTION_TYPES 10

/* Name of question type t (0..OC_SHAPES_QUESTION_TYPES-1): "count", "count_colour",
 * "count_shape", "colour_of", "shape_of", "exists", "left_of", "above", "size_of",
 * "background"; NULL out of range. vqa.jsonl lines carry it as "type". */
OC_API const char *oc_shapes_question_type(int t);
/* oc_shapes_question_type(OC_SHAPES_QUESTION_TYPES) is "false_premise" (questions drawn at
 * oc_shapes_params.false_premise, not by the weights). */

/* The built-in shapes world: scenes of 1-4 objects (circle, square, triangle, star,
 * cross; red, green, blue, yellow, purple, orange; small or large) on a white, grey or
 * black background, captioned in a fixed grammar ("a large red circle to the left of a
 * small blue square on a white background"). Scene index of a split is a pure function
 * of (split, seed, index); train, val and test never share a scene, whatever the seeds. */
typedef struct {
    oc_split split;
    uint64_t seed;
    size_t n;                     /* scenes; default 1000 */
    uint32_t image_size;          /* square images of this side; default 64 (32..1024) */
    uint32_t questions_per_image; /* lines in vqa.jsonl per image; default 4 */
    uint32_t mc_per_image;        /* lines in mc.jsonl per image; default 1 */
    /* How often each question type is drawn, relative to the others (0: never; at most
     * 1000). All 0, the default, means all equal. A scene's questions are drawn among the
     * types it can answer, so the mix changes the questions, never the scenes. */
    uint32_t question_weights[OC_SHAPES_QUESTION_TYPES];
    /* 1 (default): also the exam files in the standard benchmarks' formats: vqa10.jsonl,
     * captions5.jsonl, mcq_images.jsonl, pope.jsonl and the MMLU-layout folder mmlu/
     * (see oc_shapes_write_dataset); 0: only the training files. */
    int write_exams;
    uint32_t mmlu_per_subject;    /* questions per subject in mmlu/SPLIT/; default 50 */
    /* Rate (0..1) at which a question is replaced by one whose premise is false ("What
     * colour is the star?" with no star, answered "there is no star"; type
     * "false_premise", oc_shapes_question_type(OC_SHAPES_QUESTION_TYPES)). Default 0:
     * none, and every file is as without the field. */
    double false_premise;
} oc_shapes_params;

OC_API oc_shapes_params oc_shapes_default_params(void);

/* Writes a dataset folder: images/NNNNN.png, captions.jsonl {"image", "caption"},
 * vqa.jsonl {"image", "question", "answer"} (one-word answers), mc.jsonl {"image",
 * "question", "choices": [4], "answer": "A".."D"}, conversations.jsonl (LLaVA format:
 * {"id", "image", "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", ...}, ...]}: "Describe this image." answered by the caption, and the
 * questions, the caption request at a position drawn per scene) and info.json. With
 * write_exams, the exams too: vqa10.jsonl {"id", "image", "question", "answers": [10],
 * "type"} (vqa.jsonl's questions with ten answers, paraphrases among them),
 * captions5.jsonl {"id", "image", "captions": [5]}, mcq_images.jsonl (mc.jsonl's items
 * with "id" and "type"), pope.jsonl {"id", "image", "question", "answer", "category"},
 * and mmlu/ (dev/ and SPLIT/ CSVs of text questions about the world's rules). The folder
 * is replaced as a whole, as oc_trainer_save's (a second writer fails at once). params
 * may be NULL (defaults). */
OC_API oc_status oc_shapes_write_dataset(const oc_shapes_params *params,
                                         const char *out_dir);

/* One scene in memory: its image (caller frees with oc_image_free) and caption (free
 * with oc_free); either output may be NULL. */
OC_API oc_status oc_shapes_scene(oc_split split, uint64_t seed, uint64_t index,
                                 uint32_t image_size, oc_image **image, char **caption);

/* Byte-level BPE training (GPT-2 style: the GPT-2 split regex, 256 byte symbols, merges of
 * the most frequent pair, ties to the pair of smallest ids), written as a tokenizer.json
 * that Hugging Face tokenizers loads. */
typedef struct {
    uint32_t vocab_size;         /* special tokens + 256 bytes + merges; default 8192 */
    uint32_t min_frequency;      /* pairs seen fewer times are never merged; default 2 */
    const char *const *special;  /* special tokens, ids 0.. in this order; NULL: SmolVLM's
                                    (<|endoftext|>, <|im_start|>, <|im_end|>,
                                    <fake_token_around_image>, <image>, <end_of_utterance>,
                                    <global-img>, <row_R_col_C> for R, C in 1..6) */
    size_t n_special;
    uint64_t max_corpus_bytes;   /* over all files; default 4 GiB */
} oc_bpe_train_params;

OC_API oc_bpe_train_params oc_bpe_train_default_params(void);

/* Trains on the UTF-8 text files (each line a sequence, special tokens in the text kept
 * whole) and writes out_path atomically. params may be NULL. */
OC_API oc_status oc_bpe_train(const char *const *files, size_t n_files,
                              const oc_bpe_train_params *params, const char *out_path);

/* Fine-tuning data: a JSONL file of conversations with images, as people write them for
 * LLaVA ({"image", "conversations": [{"from": "human", "value": "<image>\n..."},
 * {"from": "gpt", ...}]}) or for Hugging Face's SmolVLM ({"messages": [{"role": "user",
 * "content": [{"type": "image"}, {"type": "text", "text": ...}]}, ...], "images": [...]}),
 * or of pre-tokenized examples ({"input_ids", "labels", "images"} and optionally
 * "pixel_values": "FILE.safetensors:TENSOR"). Image paths are relative to the file's
 * folder. Conversations are laid out in the model's chat format; the loss is on the
 * assistant's tokens only. */
typedef struct oc_dataset oc_dataset;

typedef struct {
    uint32_t max_tokens;         /* per example; 0 (default): the model's context */
    uint32_t max_images;         /* per example; default 16 */
    uint32_t max_tiles;          /* per image (SmolVLM's splitting); default 64 */
    oc_image_limits image_limits;
    int shuffle;                 /* 1 (default): a new order every epoch */
    uint64_t seed;               /* of the shuffles; default 0 */
} oc_dataset_params;

OC_API oc_dataset_params oc_dataset_default_params(void);

/* Reads and checks every line of path against the model of model_dir (its config.json,
 * tokenizer.json and preprocessor_config.json; no weights): JSON shape, roles, image
 * markers, images that exist, token ids in the vocabulary, image-token counts. The first
 * bad line fails the call: "data.jsonl:17: \"conversations\" must be a list". params may
 * be NULL. Caller frees *out with oc_dataset_free. */
OC_API oc_status oc_dataset_open(const char *path, const char *model_dir,
                                 const oc_dataset_params *params, oc_dataset **out);
OC_API void oc_dataset_free(oc_dataset *ds);
OC_API size_t oc_dataset_size(const oc_dataset *ds);

/* Example i (file order, blank lines skipped), encoded: token ids, labels, preprocessed
 * pixels. Its arrays belong to ds and stay valid until the next oc_dataset_get,
 * oc_dataset_next_batch or oc_dataset_check. */
OC_API oc_status oc_dataset_get(oc_dataset *ds, size_t i, oc_train_example *out);

/* The next n examples in the epoch's order (shuffled from (seed, epoch) when
 * params.shuffle); epochs roll over. Arrays as for oc_dataset_get. Has the type
 * oc_train_batch_fn: pass the dataset as user_data to oc_trainer_fit. On failure
 * nothing is consumed. */
OC_API oc_status oc_dataset_next_batch(oc_train_example *examples, size_t n, void *dataset);
/* Examples handed out so far (the epoch is position / size), and a way back to one, e.g.
 * step * batch * grad_accum when resuming training. */
OC_API uint64_t oc_dataset_position(const oc_dataset *ds);
/* Examples [first, first + count) of the next n, the position then advanced by n (has the
 * type oc_train_part_fn: each rank's part of a step under oc_trainer_fit_parts). */
OC_API oc_status oc_dataset_next_part(oc_train_example *examples, size_t n, size_t first,
                                      size_t count, void *dataset);
OC_API void oc_dataset_seek(oc_dataset *ds, uint64_t position);

typedef struct {
    size_t examples, images, tiles;
    uint64_t tokens;             /* all positions */
    uint64_t labelled;           /* positions the loss counts */
    size_t max_tokens;           /* the longest example */
} oc_dataset_stats;

/* Encodes every example once: a full check of the file (images decode, lengths fit). */
OC_API oc_status oc_dataset_check(oc_dataset *ds, oc_dataset_stats *stats);

/* ---- preference data (issue 14) ---- */

/* Preference pairs in the format TRL's DPOTrainer reads: one JSON object a line,
 *     {"prompt": "What colour is the star?", "chosen": "there is no star",
 *      "rejected": "red", "images": ["img/0001.png"]}
 * "prompt" a string or a list of chat messages ({"role", "content"}, content a string or
 * parts [{"type": "image"}, {"type": "text", "text": ...}] as in the messages format);
 * "chosen" and "rejected" a string or a list of one assistant message. A string prompt's
 * images go before its text, or where it says "<image>". Without "prompt", chosen and
 * rejected are whole conversations and the messages they begin with are the prompt
 * (TRL's implicit prompt). Image paths are relative to the file's folder. Each pair is
 * encoded as two training examples (the prompt with each reply, the model's chat format)
 * labelled on the reply only. Every line is checked at open; the first bad one fails it:
 * "prefs.jsonl:7: missing field \"rejected\"", "... \"chosen\" and \"rejected\" are the
 * same reply", "... image 'img/9.png' not found". */
typedef struct oc_pref_dataset oc_pref_dataset;

OC_API oc_status oc_pref_dataset_open(const char *path, const char *model_dir,
                                      const oc_dataset_params *params, oc_pref_dataset **out);
OC_API void oc_pref_dataset_free(oc_pref_dataset *ds);
OC_API size_t oc_pref_dataset_size(const oc_pref_dataset *ds);
/* Pair i (file order), encoded; arrays as for oc_dataset_get. ref_chosen and
 * ref_rejected come from oc_pref_dataset_set_reference (0 before). */
OC_API oc_status oc_pref_dataset_get(oc_pref_dataset *ds, size_t i, oc_pref_example *out);
/* Attaches reference log-probabilities: logp (size, 2), chosen then rejected of each pair
 * in file order (copied); NULL detaches them. */
OC_API oc_status oc_pref_dataset_set_reference(oc_pref_dataset *ds, const double *logp);
/* The next n pairs in a seeded order, as oc_dataset_next_batch (type oc_pref_batch_fn). */
OC_API oc_status oc_pref_dataset_next_batch(oc_pref_example *pairs, size_t n, void *dataset);
OC_API uint64_t oc_pref_dataset_position(const oc_pref_dataset *ds);
OC_API void oc_pref_dataset_seek(oc_pref_dataset *ds, uint64_t position);
/* A 64-bit hash of the file's bytes (FNV-1a), which the reference cache is keyed by. */
OC_API uint64_t oc_pref_dataset_fingerprint(const oc_pref_dataset *ds);

/* DPO's reference: the log-probability of every reply of ds under the model of ref_dir,
 * computed once (a forward pass per pair, params->batch pairs at a time, params's
 * threads) and attached to ds. cache_path (optional) keeps them: a cache written for the
 * same data file (fingerprint) and reference weights is read instead of computing; a
 * missing or stale one is (re)written, atomically. ref_dir NULL: the cache must hold them
 * (a resumed run whose reference is no longer named). *from_cache (optional) says which
 * happened. Collective in a job of several ranks (oc_dist_init): each computes its block
 * of the pairs, every rank gets them all, rank 0 alone writes the cache, and the cache is
 * read only when every rank can read it. */
OC_API oc_status oc_pref_reference(oc_pref_dataset *ds, const char *ref_dir,
                                   const char *cache_path, const oc_train_params *params,
                                   int *from_cache);

/* ---- evaluation: exams and benchmarks ---- */

/* Scores as the standard tools compute them, on a model ocellus runs or (oc_eval_score)
 * on another system's outputs:
 *  - MMLU-layout folders of multiple-choice questions (the original MMLU evaluation's
 *    prompt, or lm-evaluation-harness's), read by the log-probabilities of the letters;
 *  - multiple-choice questions about images (lmms-eval's prompt: letters by their
 *    log-probabilities, or generated and parsed);
 *  - VQA accuracy with the official answer normalisation (VQA's vqaEval.py);
 *  - BLEU-1..4 and CIDEr-D as the COCO caption evaluation computes them;
 *  - POPE (yes/no object existence: accuracy, precision, recall, F1, yes-ratio);
 *  - perplexity (lm-evaluation-harness's rolling windows) and bits per byte.
 * docs/EVAL.md gives the exact rules and where they differ from the Python tools. */

typedef enum {
    OC_EVAL_MCQ = 0,        /* MMLU-layout folder, text only */
    OC_EVAL_IMAGE_MCQ = 1,  /* JSONL multiple choice about images */
    OC_EVAL_VQA = 2,
    OC_EVAL_CAPTIONS = 3,
    OC_EVAL_POPE = 4,
    OC_EVAL_PERPLEXITY = 5,
} oc_eval_task;

typedef enum {
    OC_MCQ_ORIGINAL = 0,    /* the original MMLU evaluation (hendrycks/test): its header
                               ("...about  abstract algebra.": a space before each word of
                               the subject), BOS when the tokenizer adds one, fewer shots
                               when the prompt would not fit the context */
    OC_MCQ_HARNESS = 1,     /* lm-evaluation-harness's "mmlu" task: one space in the
                               subject, question stripped, no BOS, the context cut from the
                               left when too long */
} oc_mcq_format;

/* Counts of one group of items (a subject, a question type, a POPE category) or of all. */
typedef struct {
    char *name;             /* NULL for the whole exam */
    size_t n;               /* items scored */
    size_t correct;         /* items fully right: exact match, the right letter or yes/no */
    double score;           /* sum of the items' scores in [0, 1] (VQA accuracy; else the
                               same as correct) */
    size_t tp, fp, tn, fn;  /* POPE, "yes" positive */
} oc_eval_group;

typedef struct {
    oc_eval_task task;
    oc_eval_group all;
    oc_eval_group *groups;  /* (n_groups) by "type"/"category"/"subject" (MMLU: subjects,
                               sorted), in first-seen order */
    size_t n_groups;
    double accuracy;        /* all.score / all.n, in [0, 1] (VQA: the VQA accuracy; MMLU:
                               the micro average) */
    double macro_accuracy;  /* mean of the groups' accuracies (MMLU's macro average) */
    double bleu[4];         /* captions: corpus BLEU-1..4, in [0, 1] */
    double cider_d;         /* captions: CIDEr-D (COCO's scale: 10 x the mean cosine) */
    double precision, recall, f1, yes_ratio; /* POPE */
    uint64_t tokens;        /* perplexity: tokens scored */
    uint64_t bytes;         /* perplexity: UTF-8 bytes of the texts */
    double nll;             /* perplexity: sum of -log p, nats */
    double mean_nll, perplexity, bits_per_byte;
    size_t fewer_shots;     /* MMLU: questions asked with fewer shots than requested */
    size_t truncated;       /* MMLU harness: contexts cut from the left */
    double seconds;         /* wall time */
} oc_eval_result;

OC_API void oc_eval_result_free(oc_eval_result *r); /* frees the fields, not the struct */

/* One scored item, handed to oc_eval_params.on_item as soon as it is scored. Strings are
 * valid during the call only. */
typedef struct {
    size_t index, total;    /* this item (0-based), items in the run (params.dist in a job
                               of several ranks: among this rank's items) */
    const char *id;         /* the item's "id", or "FILE:LINE" / "FILE:row N" */
    const char *group;      /* its subject, type or category, or NULL */
    const char *prompt;     /* the question as asked (MMLU: the whole prompt) */
    const char *prediction; /* the generated text or the chosen letter */
    const char *expected;   /* the answer (VQA: the most common of them; captions: the
                               first reference) */
    double score;           /* in [0, 1] (captions: the exact match; BLEU and CIDEr-D are
                               scored over the corpus at the end) */
    int correct;
    const oc_eval_result *so_far; /* the counts so far (all, groups, accuracy) */
} oc_eval_item;

/* Return non-zero to stop (the call then returns OC_ERR_CANCELLED with the counts so far
 * in *out). */
typedef int (*oc_eval_item_fn)(const oc_eval_item *item, void *user_data);

typedef struct {
    size_t limit;            /* items (MMLU: questions over all subjects); 0 = all */
    oc_gen_params gen;       /* answers are generated with these (default greedy, 64) */
    oc_eval_item_fn on_item; /* optional */
    void *user_data;
    uint32_t shots;          /* MMLU: dev examples before each question; default 5 */
    oc_mcq_format format;    /* MMLU prompt; default OC_MCQ_ORIGINAL */
    const char *split;       /* MMLU: "test" (default), "val" or "dev" */
    int generate;            /* image MCQ: 1 = generate and compare the text with the
                                letter (lmms-eval's ScienceQA rule), 0 = letter
                                log-probabilities (default) */
    const char *prompt;      /* captions: the request; NULL = "Describe this image." */
    const char *suffix;      /* appended to each question; NULL = none, except image MCQ:
                                "\nAnswer with the option's letter from the given choices
                                directly." (lmms-eval) */
    oc_image_limits image_limits;
    int dist;                /* 1: in a job of several ranks (oc_dist_init) each rank scores
                                its block of the items and every rank gets the counts of
                                all (the call is collective: every rank makes it); on_item
                                sees this rank's items. 0 (default): this process alone */
} oc_eval_params;

OC_API oc_eval_params oc_eval_default_params(void);

/* The exams. data: an MMLU folder or NAME_SPLIT.csv (oc_eval_mcq), else a JSONL file:
 *   image MCQ  {"image" | "images", "question", "choices": [...], "answer": "A", "hint"?}
 *   VQA        {"image" | "images", "question", "answers": [10] | "answer": "..."}
 *   captions   {"image" | "images", "captions" | "references": [...] | "caption": "..."}
 *   POPE       {"image", "question" | "text", "answer" | "label": "yes" | "no",
 *               "category"}
 *   perplexity FILE.jsonl of {"text"}, or a text file (one text a line)
 * with optional "id"/"question_id" and a group name ("type", "question_type", "category",
 * "subject"). Image paths are relative to the file's folder. A bad line fails the call
 * before the model runs: "vqa.jsonl:17: ...". params may be NULL. On success, and on
 * OC_ERR_CANCELLED, *out holds the counts (free with oc_eval_result_free). */
OC_API oc_status oc_eval_mcq(const oc_model *model, const char *data, const oc_eval_params *params,
                      oc_eval_result *out);
OC_API oc_status oc_eval_image_mcq(const oc_model *model, const char *data,
                            const oc_eval_params *params, oc_eval_result *out);
OC_API oc_status oc_eval_vqa(const oc_model *model, const char *data, const oc_eval_params *params,
                      oc_eval_result *out);
OC_API oc_status oc_eval_captions(const oc_model *model, const char *data,
                           const oc_eval_params *params, oc_eval_result *out);
OC_API oc_status oc_eval_pope(const oc_model *model, const char *data, const oc_eval_params *params,
                       oc_eval_result *out);
OC_API oc_status oc_eval_perplexity(const oc_model *model, const char *data,
                             const oc_eval_params *params, oc_eval_result *out);

typedef enum {
    OC_METRIC_VQA = 0,      /* VQA accuracy ("answers"), exact match for one "answer" */
    OC_METRIC_BLEU = 1,     /* BLEU-1..4 (and CIDEr-D: the same references) */
    OC_METRIC_CIDER = 2,    /* CIDEr-D (and BLEU) */
    OC_METRIC_POPE = 3,
    OC_METRIC_MCQ = 4,      /* the prediction, stripped, equals the letter (any case) */
} oc_metric;

/* Scores another system's outputs with no model: predictions JSONL {"id", "prediction"};
 * references JSONL {"id", "references": [...]} (captions), {"id", "answers": [...]} (VQA)
 * or {"id", "answer"} (VQA, POPE, MCQ). Ids (strings or integers) match across the
 * files; every reference needs a prediction and every prediction a reference. Items are
 * scored in the references' order. params may be NULL (limit, on_item are used). */
OC_API oc_status oc_eval_score(oc_metric metric, const char *predictions, const char *references,
                        const oc_eval_params *params, oc_eval_result *out);

/* -- the metrics alone -- */

/* The answer normalisation of the official VQA evaluation (vqaEval.py) applied to a
 * prediction: newlines and tabs to spaces, stripped, punctuation removed or spaced,
 * periods not before a digit removed, lower-cased, number words to digits, articles
 * dropped, contractions restored ("dont" -> "don't"). *out: free with oc_free. */
OC_API oc_status oc_vqa_normalize(const char *answer, char **out);

/* VQA accuracy of a prediction against n human answers, in [0, 1]: the mean over the n
 * leave-one-out subsets of min(1, matches / 3), after oc_vqa_normalize of the prediction
 * and (when the answers differ) the punctuation rule on the answers, as vqaEval.py does.
 * n == 1 gives the exact match of oc_answer_matches. */
OC_API oc_status oc_vqa_accuracy(const char *prediction, const char *const *answers, size_t n,
                          double *accuracy);

/* Exact match after trimming spaces and final periods and ignoring ASCII case (ocellus's
 * single-answer rule: "Red." matches "red"). */
OC_API int oc_answer_matches(const char *prediction, const char *answer);

/* The COCO caption evaluation's preprocessing (Stanford PTBTokenizer -preserveLines
 * -lowerCase, then its punctuation tokens removed), reproduced in C for the common cases
 * (docs/EVAL.md lists them): lower-case tokens joined by single spaces. *out: oc_free. */
OC_API oc_status oc_caption_tokenize(const char *caption, char **out);

typedef struct {
    double bleu[4];          /* corpus BLEU-1..4 with the closest reference length */
    double cider_d;          /* the mean of the per-image CIDEr-D */
} oc_caption_metrics;

/* BLEU and CIDEr-D of n candidates (one per image) against their references (refs[i] has
 * n_refs[i] >= 1 strings), as pycocoevalcap computes them: tokenize = 1 applies
 * oc_caption_tokenize to all (as COCOEvalCap does), 0 takes the texts as tokenized
 * (split at whitespace). CIDEr-D's document frequencies come from these references.
 * per_image_cider (optional, n) receives each image's CIDEr-D. */
OC_API oc_status oc_caption_metrics_compute(const char *const *candidates,
                                     const char *const *const *refs, const size_t *n_refs,
                                     size_t n, int tokenize, oc_caption_metrics *out,
                                     double *per_image_cider);

/* POPE's reading of a generated answer (the POPE evaluation script): the text up to its
 * first '.', commas removed, split at spaces; "No", "no" or "not" among the words is a
 * no (0), anything else a yes (1). */
OC_API int oc_pope_says_yes(const char *answer);

/* The MMLU prompt of a question (choices[n_choices], its answer not shown) after k shots
 * under a subject ("abstract_algebra"), exactly as the format builds it. Shot i is
 * shot_questions[i], its choices shot_choices[i] (a NULL-terminated list) and its answer
 * shot_answers[i] (0 = "A"). *out: free with oc_free. */
OC_API oc_status oc_mmlu_prompt(oc_mcq_format format, const char *subject,
                         const char *const *shot_questions,
                         const char *const *const *shot_choices, const int *shot_answers,
                         size_t k, const char *question, const char *const *choices,
                         size_t n_choices, char **out);

/* log p(answer | images, question) under the model's chat format: the sum of the
 * log-probabilities (natural log) of the answer's tokens and of the end-of-turn token,
 * as the assistant's reply to one user turn; *n_tokens (optional) gets their count. The
 * probability of the exact answer is exp(*logprob). */
OC_API oc_status oc_answer_logprob(const oc_model *model, const oc_image *const *images,
                            size_t n_images, const char *question, const char *answer,
                            double *logprob, size_t *n_tokens);

/* ---- preference data from the model's own answers (issue 14) ---- */

typedef struct {
    size_t prompts;          /* items sampled */
    size_t pairs;            /* pairs written */
    size_t all_right;        /* items whose samples were all right (no pair) */
    size_t none_right;       /* items whose samples were all wrong */
    size_t from_reference;   /* pairs whose chosen reply is the reference answer */
    size_t skipped;          /* items without a pair */
    double mean_score;       /* mean judge score of all samples, in [0, 1] */
} oc_pref_gen_stats;

typedef struct {
    uint32_t samples;        /* answers sampled per question; default 8 (2..1024) */
    float temperature;       /* default 1.0 */
    uint32_t max_tokens;     /* per answer; default 32 */
    uint64_t seed;           /* of the sampling; each (item, sample) has its own stream */
    size_t limit;            /* items of the file (0: all) */
    int reference_fallback;  /* 1: when every sample is wrong, the reference answer is the
                                chosen reply (against a wrong sample); 0 (default): no
                                pair */
    /* optional, after each item: return non-zero to stop (OC_ERR_CANCELLED, nothing
     * written) */
    int (*on_item)(size_t done, size_t total, const oc_pref_gen_stats *stats, void *user_data);
    void *user_data;
} oc_pref_gen_params;

OC_API oc_pref_gen_params oc_pref_gen_default_params(void);

/* For each question of a VQA file (the exam format: {"image" | "images", "question",
 * "answer" | "answers", "type"}), samples params.samples answers from model, grades each
 * with the judge (VQA accuracy against the item's reference answers, after the VQA
 * normaliser; for the shapes world the references are the scene's truth, written by its
 * rules) and writes the best and the worst graded answers as a pair to out_path, in the
 * format oc_pref_dataset_open reads ({"prompt", "chosen", "rejected", "images", "scores",
 * "type"}; images relative to out_path's folder when under it, else absolute). Items
 * whose samples all score the same give no pair (see reference_fallback). out_path is
 * written atomically. stats may be NULL. */
OC_API oc_status oc_make_preferences(const oc_model *model, const char *data,
                                     const oc_pref_gen_params *params, const char *out_path,
                                     oc_pref_gen_stats *stats);

/* ---- serving: conversations, encoded images, replies, the HTTP server ---------- */

/* An image run through preprocessing, the vision encoder and the connector: the rows its
 * image tokens take in a prompt. Immutable and reference-counted, so that one encoding
 * serves many conversations and threads; it belongs to the model that encoded it (which
 * must outlive it). */
typedef struct oc_encoded_image oc_encoded_image;

/* Encodes img with model. Caller frees *out with oc_encoded_image_free. */
OC_API oc_status oc_image_encode(const oc_model *model, const oc_image *img, oc_encoded_image **out);
/* Another reference to e (returns e); each reference is dropped with oc_encoded_image_free. */
OC_API oc_encoded_image *oc_encoded_image_ref(oc_encoded_image *e);
OC_API void oc_encoded_image_free(oc_encoded_image *e);
OC_API uint32_t oc_encoded_image_tiles(const oc_encoded_image *e);  /* tiles the encoder saw */
OC_API uint32_t oc_encoded_image_tokens(const oc_encoded_image *e); /* image tokens in a prompt */
OC_API double oc_encoded_image_ms(const oc_encoded_image *e);       /* time its encoding took */

/* A cache of encoded images keyed by the SHA-256 of the image file's bytes: the same
 * picture sent again is neither decoded nor encoded again while it stays cached. Least
 * recently used entries go first when the features exceed max_bytes. Thread-safe; two
 * threads asking for the same new image encode it once. */
typedef struct oc_image_cache oc_image_cache;

typedef struct {
    uint64_t hits, misses;   /* lookups answered from the cache / by encoding */
    uint64_t entries, bytes; /* held now */
} oc_image_cache_stats;

/* model must outlive the cache. max_bytes 0 caches nothing (every call encodes). */
OC_API oc_status oc_image_cache_new(const oc_model *model, uint64_t max_bytes, oc_image_cache **out);
OC_API void oc_image_cache_free(oc_image_cache *c); /* references handed out stay valid */
/* The encoded image of an image file's bytes (decoded with limits, which may be NULL;
 * name is used in errors). *out: a new reference (oc_encoded_image_free). hit (may be
 * NULL): 1 when it came from the cache. */
OC_API oc_status oc_image_cache_get(oc_image_cache *c, const void *data, size_t size,
                             const char *name, const oc_image_limits *limits,
                             oc_encoded_image **out, int *hit);
OC_API oc_image_cache_stats oc_image_cache_get_stats(oc_image_cache *c);

/* A conversation: messages of a role, each a sequence of text and image parts, rendered
 * in the model's chat format by oc_session_reply (SmolVLM: "System: ...", images where
 * their parts are; LLaVA-1.5: the system text first, images before the text). */
typedef enum { OC_ROLE_SYSTEM = 0, OC_ROLE_USER = 1, OC_ROLE_ASSISTANT = 2 } oc_role;
typedef struct oc_conversation oc_conversation;

OC_API oc_status oc_conversation_new(oc_conversation **out);
OC_API void oc_conversation_free(oc_conversation *c);
OC_API void oc_conversation_clear(oc_conversation *c);
/* Starts a message; the parts added next belong to it. */
OC_API oc_status oc_conversation_add_message(oc_conversation *c, oc_role role);
/* Appends a text part (copied) to the last message. */
OC_API oc_status oc_conversation_add_text(oc_conversation *c, const char *text);
/* Appends an image part to the last message (a user message), taking a new reference to
 * img. source (may be NULL): the image's file, copied, for oc_conversation_save_jsonl. */
OC_API oc_status oc_conversation_add_image(oc_conversation *c, oc_encoded_image *img,
                                    const char *source);
OC_API size_t oc_conversation_length(const oc_conversation *c); /* messages */
OC_API void oc_conversation_pop(oc_conversation *c);            /* drops the last message */
/* Writes the conversation as one line of fine-tuning JSONL in Hugging Face's messages
 * format ({"messages": [{"role", "content": [{"type": "image"}, {"type": "text", "text"}]}],
 * "images": [absolute paths]}), which oc_dataset_open and `ocellus train` read; the file
 * is replaced atomically. Every image needs a source. */
OC_API oc_status oc_conversation_save_jsonl(const oc_conversation *c, const char *path);

typedef struct {
    oc_gen_params gen;        /* on_token gets the reply's text as it grows: without the
                                 leading space of the chat format, stop strings held back
                                 until they are ruled out, never past one */
    const char *const *stop;  /* strings that end the reply (not part of it); may be NULL */
    size_t n_stop;
} oc_reply_params;

OC_API oc_reply_params oc_reply_default_params(void);

typedef enum {
    OC_FINISH_STOP = 0,      /* an end-of-turn token or a stop string */
    OC_FINISH_LENGTH = 1,    /* max_tokens, or the context is full */
    OC_FINISH_CANCELLED = 2, /* the token callback asked to stop */
} oc_finish_reason;

/* "stop", "length", "cancelled" */
OC_API const char *oc_finish_reason_str(oc_finish_reason r);

typedef struct {
    char *text;              /* the assistant's message, NUL-terminated */
    uint32_t prompt_tokens;  /* the rendered conversation, image tokens included */
    uint32_t cached_tokens;  /* of those, reused from the session's KV cache */
    uint32_t completion_tokens; /* generated (a stop string's tokens included) */
    oc_finish_reason finish;
    oc_timings timings;      /* image_ms / n_tiles stay 0: images come encoded */
} oc_reply;

OC_API void oc_reply_free(oc_reply *r); /* frees the fields, not the struct */

/* Generates the assistant's next message for conversation c (which must not be empty).
 * The session's conversation becomes c plus the reply; its KV cache is kept for the
 * longest prefix the new prompt shares with what it computed before, so a conversation
 * that grows turn by turn only computes its new tokens. The sampler is seeded from
 * params->gen.seed on every call. A callback that stops generation still gives OC_OK
 * with finish OC_FINISH_CANCELLED and the text so far. params may be NULL. */
OC_API oc_status oc_session_reply(oc_session *s, const oc_conversation *c,
                           const oc_reply_params *params, oc_reply *out);

/* An OpenAI-compatible HTTP server (libmicrohttpd): POST /v1/chat/completions (text and
 * images as data: URLs, or file:// URLs inside allow_dir; streaming as server-sent
 * events), GET /v1/models, GET /health. params.parallel sessions share the model; up to
 * params.queue more requests wait for one, beyond that requests get 503. */
typedef struct oc_server oc_server;

typedef void (*oc_server_log_fn)(const char *line, void *user_data);

typedef struct {
    const char *host;          /* address to listen on; default "127.0.0.1" */
    uint16_t port;             /* default 8080; 0: a free port (oc_server_port) */
    uint32_t parallel;         /* sessions generating at once; default 1 */
    uint32_t queue;            /* requests waiting for a session; default 64 */
    const char *api_key;       /* required as "Authorization: Bearer KEY"; NULL: none */
    uint64_t max_body_bytes;   /* request bodies; default 32 MiB */
    const char *allow_dir;     /* file:// images only beneath this folder; NULL: refused */
    uint32_t max_images;       /* per request; 0: the model's max_images */
    uint32_t max_tokens;       /* largest max_tokens a request may ask; 0: the context */
    uint64_t image_cache_bytes; /* encoded images kept; default 256 MiB; 0: none */
    uint32_t max_connections;  /* open connections; default 256 */
    const char *model_id;      /* "model" in responses; NULL: the model folder's name */
    oc_server_log_fn log;      /* one line per request (method, route, status, tokens, ms)
                                  and server events; NULL: none */
    void *log_user_data;
} oc_server_params;

OC_API oc_server_params oc_server_default_params(void);

/* Starts listening and serving in background threads. The model must outlive the server.
 * Caller frees *out with oc_server_free. */
OC_API oc_status oc_server_start(const oc_model *model, const oc_server_params *params,
                          oc_server **out);
OC_API uint16_t oc_server_port(const oc_server *s); /* the port it listens on */
/* Asks the server to stop: it takes no new connections, finishes the requests it has and
 * then oc_server_wait returns. Async-signal-safe (call it from a SIGINT handler). */
OC_API void oc_server_stop(oc_server *s);
/* Blocks until oc_server_stop was called and the running requests are done. */
OC_API void oc_server_wait(oc_server *s);
/* Stops (as oc_server_stop + oc_server_wait) and frees. */
OC_API void oc_server_free(oc_server *s);


/* ---- scaling laws: fits, compute, charts, ladders of runs ---- */

/* Power-law fits L(C) = a * C^b + c, as the Chinchilla paper's third approach: the Huber
 * loss of the residuals of log L (log L predicted as log(exp(log a + b log C) + exp(log c)),
 * so a and c stay positive) minimised from a grid of starting points with GSL's BFGS2,
 * then a residual bootstrap for intervals: the fit's log residuals, inflated by
 * sqrt(n / (n - parameters)), are drawn with replacement and added to the fitted curve,
 * and every replicate is refitted. Without the irreducible term (irreducible = 0) the same
 * fits L = a * C^b (e.g. the mean negative log pass rate of a capability,
 * alpha * C^(-k): a = alpha, b = -k). */
typedef struct {
    int irreducible;       /* 1 (default): fit c; 0: c = 0 */
    double huber_delta;    /* of the Huber loss on log residuals; default 0.01 (about the
                              scatter of final losses across seeds: least squares for
                              ordinary points, absolute deviations for outliers) */
    uint32_t bootstrap;    /* refits for the intervals; default 1000; 0: none */
    double ci_level;       /* of the intervals; default 0.95 */
    uint64_t seed;         /* of the bootstrap draws; default 0 */
} oc_powerlaw_params;

OC_API oc_powerlaw_params oc_powerlaw_default_params(void);

typedef struct {
    double a, b, c;            /* the fit (c = 0 without the irreducible term) */
    double a_ci[2], b_ci[2], c_ci[2]; /* bootstrap percentile intervals; NaN when there is
                                         no bootstrap (bootstrap = 0, or as many points as
                                         parameters) */
    double objective;          /* sum of Huber losses of the log residuals at the fit */
    double rms_log_residual;   /* sqrt(mean((log L_i - log fit(C_i))^2)) */
    size_t n_points;
    uint32_t n_starts;         /* starting points tried */
    uint32_t n_bootstrap;      /* bootstrap refits that converged */
} oc_powerlaw_result;

typedef struct oc_powerlaw oc_powerlaw;

/* Fits n points (compute[i], loss[i]). Fewer than 3 points, a compute or loss that is not
 * positive and finite (NaN included), fewer distinct computes than parameters, or the
 * same loss everywhere (a flat curve) give OC_ERR_INVALID_ARG with a sentence naming the
 * problem. params may be NULL (defaults). Caller frees *out with oc_powerlaw_free. */
OC_API oc_status oc_powerlaw_fit(const double *compute, const double *loss, size_t n,
                                 const oc_powerlaw_params *params, oc_powerlaw **out);
OC_API void oc_powerlaw_free(oc_powerlaw *f);
/* The fit's numbers, owned by f. */
OC_API const oc_powerlaw_result *oc_powerlaw_get(const oc_powerlaw *f);
/* a * compute^b + c; NaN for compute <= 0. */
OC_API double oc_powerlaw_value(const oc_powerlaw *f, double compute);
/* The fitted value at compute and its bootstrap percentile interval (NaN without a
 * bootstrap); any output may be NULL. */
OC_API oc_status oc_powerlaw_predict(const oc_powerlaw *f, double compute, double *value,
                                     double *ci_low, double *ci_high);

/* Reads a CSV of runs: a header line naming the columns, then one run a line. The columns
 * "compute" and "loss" (or "final_loss") are used when the header names them, else the
 * first two. Errors name the file and line ("runs.csv:4: 'x' is not a number"). *compute
 * and *loss: free with oc_free. */
OC_API oc_status oc_powerlaw_read_csv(const char *path, double **compute, double **loss,
                                      size_t *n);

/* Reads n_names numeric columns of a CSV with a header line (each name may list
 * alternatives, "loss|final_loss"); empty fields read as NaN. columns[j] (*n_rows
 * values) for names[j]: free each with oc_free. Errors name the file and line. */
OC_API oc_status oc_csv_read_columns(const char *path, const char *const *names, size_t n_names,
                                     double **columns, size_t *n_rows);

/* FLOPs of one training step from the model's shapes (train/scale_flops.c): 2*M*N*K of
 * every matrix product oc_trainer_step would run on these examples, written out layer by
 * layer from the config and the examples' lengths. `total` is what oc_train_stats.flops
 * counts as the kernels run (tests/test_scaling_flops.c checks that they agree). */
typedef struct {
    double total;           /* forward + backward, attention included */
    double forward;         /* the forward pass alone (what oc_trainer_eval runs) */
    double attention;       /* attention's score and value products (both passes) */
    double vision;          /* the vision tower and connector (both passes) */
    double lm_head;         /* the LM head on the labelled positions (both passes) */
    double attention_exact; /* attention over exactly the (query, key) pairs the causal
                               mask allows, both passes: what the blocked kernels
                               approach from above */
    double six_n_d;         /* 6 * parameters * tokens, the usual estimate, for
                               comparison */
} oc_step_flops;

OC_API oc_status oc_trainer_step_flops(const oc_trainer *tr, const oc_train_example *examples,
                                       size_t n, oc_step_flops *out);

/* Charts (eval/scaling_plot.c, drawn with cairo): series of lines, markers and error bars
 * on linear or logarithmic axes, written as PNG or SVG by the path's extension. Points
 * that are not finite (or not positive on a log axis) are skipped; a line breaks there. */
typedef enum {
    OC_SERIES_LINE = 0,
    OC_SERIES_DASHED = 1,
    OC_SERIES_MARKERS = 2,       /* filled markers, with error bars when y_low/y_high */
    OC_SERIES_OPEN_MARKERS = 3,
} oc_series_style;

typedef enum { OC_MARK_CIRCLE = 0, OC_MARK_SQUARE = 1, OC_MARK_DIAMOND = 2,
               OC_MARK_STAR = 3 } oc_marker;

typedef struct {
    const char *label;            /* legend entry; NULL: none */
    const double *x, *y;          /* (n) */
    const double *y_low, *y_high; /* optional (n): error bars of markers */
    size_t n;
    oc_series_style style;
    oc_marker marker;
    uint32_t rgb;                 /* 0xRRGGBB */
    double line_width;            /* pixels; 0: 2 */
    double marker_size;           /* radius in pixels; 0: 5 */
} oc_chart_series;

typedef struct {
    const char *title, *x_label, *y_label; /* each may be NULL */
    int log_x, log_y;
    uint32_t width, height;       /* pixels; default 900 x 600 */
    const oc_chart_series *series;
    size_t n_series;
    int legend_bottom_left;       /* 0: the legend at the top right */
} oc_chart;

OC_API oc_chart oc_chart_default(void);
/* Writes path (.png or .svg) atomically. A chart with no drawable point is
 * OC_ERR_INVALID_ARG. */
OC_API oc_status oc_chart_write(const oc_chart *chart, const char *path);

/* Predictable scaling (scale/): a ladder of small runs trained the same way as a target,
 * the target's final validation loss and capability predicted from them before it is
 * trained, then the target trained and the prediction checked, as in the GPT-4 technical
 * report. A recipe (JSON, docs/scaling/README.md) names the model family and base folder,
 * the data (the shapes world or the user's JSONL), the target's width and token budget,
 * the ladder's rule (runs geometrically spaced in compute up to a fraction of the
 * target's, tokens as a power of parameters) and the training hyperparameters with their
 * rule by width. out_dir receives:
 *   plan.json            the runs: widths, parameters, tokens, steps, lr, planned FLOPs
 *   data/                the datasets (shapes world) and the capability questions
 *   runs/NAME/           a checkpoint folder per run, with loss.csv (the training curve)
 *                        and result.json once finished
 *   prediction.json      the fits and predictions, written before the target starts
 *   report.json, report.csv, loss_vs_compute.png, capability_vs_compute.png
 * Calling it again on the same out_dir continues: finished runs are skipped, a run in
 * progress resumes from its last checkpoint (bit for bit), and a prediction already
 * written is kept.
 * In a job of several ranks (oc_dist_init; `mpirun -np N ocellus scale run`) it is
 * collective: the ladder's runs are shared out by their planned FLOPs (oc_dist_assign),
 * each trained by its rank alone (the same bits as in one process), then the target is
 * trained data-parallel by every rank. Rank 0 writes the plan, the data, the prediction
 * and the report, and every rank writes its own runs' folders: out_dir must be a folder
 * every rank sees (one machine, or a shared file system) for a later call to continue.
 * Progress events come from each rank's own runs; rank 0 also gets RUN_DONE for the runs
 * the other ranks finished, once the ladder is done. */
typedef enum {
    OC_SCALE_PLAN = 0,        /* the plan is made (n_runs, compute_total) */
    OC_SCALE_RUN_START = 1,   /* a run starts or resumes */
    OC_SCALE_RUN_STEP = 2,    /* after each optimizer step of a run */
    OC_SCALE_RUN_DONE = 3,    /* a run is finished (skipped: by an earlier call) */
    OC_SCALE_PREDICTION = 4,  /* the prediction is written (path) */
    OC_SCALE_REPORT = 5,      /* the report is written (path) */
    OC_SCALE_DATA = 6,        /* the datasets are being written or checked */
} oc_scale_event_kind;

typedef struct {
    oc_scale_event_kind kind;
    size_t run, n_runs;       /* the ladder's runs first (smallest first), the target last */
    const char *name;         /* "ladder-00", ..., "target" */
    int is_target;
    uint32_t width;           /* the text model's hidden size */
    size_t params;
    uint64_t tokens, steps;   /* of the run, by the plan */
    double lr;
    const oc_train_stats *stats; /* RUN_STEP */
    double final_loss;        /* RUN_DONE: validation loss */
    double capability;        /* RUN_DONE: -mean log p(exact answer) over the questions */
    double run_compute;       /* RUN_DONE: FLOPs the trainer counted; RUN_START: planned */
    double run_seconds;       /* RUN_DONE */
    int skipped;              /* RUN_DONE: finished by an earlier call */
    double predicted_loss, ci_low, ci_high; /* PREDICTION */
    double compute_done, compute_total; /* FLOPs of all runs: counted so far, and planned */
    double elapsed_s;         /* since this call began */
    double eta_s;             /* time left: the planned FLOPs not yet done at the rate of
                                 the latest run (< 0: not known yet) */
    const char *path;         /* PREDICTION, REPORT: the file written */
    const char *message;      /* DATA: what is being done */
    int rank;                 /* the rank that trains (trained) the run: 0 alone; in a job of
                                 several ranks each ladder run is one rank's */
} oc_scale_event;

/* Return non-zero to stop: the current run is checkpointed and oc_scale_run returns
 * OC_ERR_CANCELLED. */
typedef int (*oc_scale_progress_fn)(const oc_scale_event *ev, void *user_data);

typedef struct {
    int n_threads;            /* trainer threads; <= 0: the recipe's "threads" (default 1) */
    oc_scale_progress_fn on_progress;
    void *user_data;
    int plan_only;            /* 1: write plan.json and stop */
    int stop_before_target;   /* 1: stop once the prediction is written */
} oc_scale_params;

OC_API oc_scale_params oc_scale_default_params(void);

/* Runs (or continues) the recipe's ladder and target into out_dir (created if needed). A
 * recipe that does not match the plan out_dir was started with is OC_ERR_INVALID_ARG.
 * params may be NULL. */
OC_API oc_status oc_scale_run(const char *recipe_path, const char *out_dir,
                              const oc_scale_params *params);

/* A table of the runs and the prediction of out_dir (from report.json, else
 * prediction.json and the finished runs, else plan.json), for a terminal. *text: free
 * with oc_free. */
OC_API oc_status oc_scale_summary(const char *out_dir, char **text);
/* ---- processes: jobs of several ranks on MPI (core/dist.c, docs/DISTRIBUTED.md) ---- */

/* `mpirun -np N ocellus ...` (or any MPI launcher) starts N processes, the job's ranks.
 * oc_dist_init joins them (MPI_Init) when ocellus is built with MPI (-Dmpi) and a launcher
 * started this process; otherwise this process is alone (rank 0 of 1) and nothing
 * changes. Trainers made after it train data-parallel over the ranks; the exams share
 * out their items and sum the counts when oc_eval_params.dist is set. The oc_dist_* calls that exchange (oc_dist_sum,
 * oc_dist_allgather, oc_dist_barrier) are collective: every rank makes them, in the same
 * order, from the thread that called oc_dist_init. Every wait has a deadline
 * (oc_dist_set_timeout): a rank that stops answering is named in the error, and the job
 * must then end (oc_dist_abort). */
typedef struct {
    int rank, size;             /* this process, and the job's processes: 0 and 1 alone */
    int local_rank, local_size; /* the same among the processes on this machine */
    int mpi;                    /* 1: the job runs on MPI */
    int threads;                /* threads for this process: the CPUs the launcher bound it
                                   to, else this machine's CPUs over its processes */
    double timeout;             /* seconds an exchange may wait; default 600 */
    int mpi_built;              /* 1: this ocellus was built with MPI (-Dmpi) */
} oc_dist_info;

/* Joins the job (idempotent). Fails when a launcher started several processes but this
 * ocellus was built without MPI (they would each train alone, over each other's files),
 * or when MPI cannot start. */
OC_API oc_status oc_dist_init(void);
OC_API oc_dist_info oc_dist_get_info(void);
OC_API void oc_dist_set_timeout(double seconds);
/* Leaves the job (MPI_Finalize; MPI_Abort after a failed exchange). Call it once, at the
 * end, on every rank; harmless alone. */
OC_API void oc_dist_finalize(void);
/* Ends every process of the job (MPI_Abort) with exit code code; returns only when the
 * process is alone. For a failure the other ranks do not know of, which would leave them
 * waiting. */
OC_API void oc_dist_abort(int code);
/* 1 when the error just returned by a collective call is known to every rank (it was
 * agreed among them): rank 0 reports it, the others need not, and every rank can end
 * normally (oc_dist_finalize). 0 for an error of this rank alone (then oc_dist_abort). */
OC_API int oc_dist_error_is_shared(void);
/* Agreement on a status (collective): each rank passes its own; OC_OK when every rank's is
 * OC_OK. Otherwise every rank returns an error, marked shared (oc_dist_error_is_shared):
 * a rank that failed its own status and message, the others the first failing rank's,
 * prefixed "rank K: " (so that rank 0 can say what went wrong where). Alone: mine. */
OC_API oc_status oc_dist_agree(oc_status mine);

/* This rank's contiguous block [*lo, *hi) of n items (the exams' split: the first n % size
 * ranks get one more). */
OC_API void oc_dist_span(size_t n, size_t *lo, size_t *hi);
/* Independent tasks of different costs (the rungs of a scaling ladder, in FLOPs) shared
 * out: owner[i] gets the rank that runs task i, largest first to the least loaded rank
 * (the same answer on every rank; no exchange). */
OC_API oc_status oc_dist_assign(const double *cost, size_t n, int *owner);
/* values[0..n) <- their sum over the ranks, added in rank order (the same bits on every
 * run), on every rank. */
OC_API oc_status oc_dist_sum(double *values, size_t n);
/* Every rank's size bytes, concatenated in rank order, on every rank: *all (free with
 * oc_free), sizes (oc_dist_get_info().size entries, caller's) the size of each part. */
OC_API oc_status oc_dist_allgather(const void *data, size_t size, void **all, size_t *sizes);
OC_API oc_status oc_dist_barrier(void);

#ifdef __cplusplus
}
#endif
#endif
