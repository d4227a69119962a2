#!/usr/bin/env python3
"""Recipe of the MMLU test fixtures (tests/data/mmlu-shapes and tests/data/mmlu-tiny).

mmlu-shapes/ is a small MMLU-layout folder of the shapes world's text questions
(`ocellus data shapes`), cut to unequal subject sizes so that the micro and macro
averages differ. mmlu-tiny/ is a tiny text model (SmolVLM layout, ~70k parameters)
trained by `ocellus train` to answer those questions in both prompt formats (original
MMLU, 1 shot; lm-evaluation-harness, 1 shot) with letters we choose: the right one,
except for the questions listed in WRONG, where it is trained on the next letter. So its
answers are known and test_eval checks the exact counts. Run from the repository root
after building:  python3 tests/data/mmlu-tiny/make_fixture.py build/ocellus
"""
import json, os, shutil, subprocess, sys, tempfile, csv

OC = sys.argv[1] if len(sys.argv) > 1 else "build/ocellus"
ROOT = "tests/data"
KEEP = {"shapes_geometry": 6, "shapes_rules": 4, "shapes_captions": 6, "shapes_relations": 8}
# (subject, row) trained to answer the next letter instead of the right one
WRONG = {("shapes_rules", 2), ("shapes_rules", 4), ("shapes_captions", 3)}
SHOTS = 1

def run(*args, **kw):
    return subprocess.run([OC, *args], check=True, capture_output=True, text=True, **kw).stdout

def fmt_subject_original(s):  # hendrycks/test format_subject: " word" per piece
    return "".join(" " + e for e in s.split("_"))

def example(q, choices, answer, harness):
    text = (q.strip() if harness else q)
    for j, c in enumerate(choices):
        text += "\n%s. %s" % ("ABCD"[j], c)
    text += "\nAnswer:"
    if answer is not None:
        text += " %s" % answer + ("" if harness else "\n\n")
    return text

def prompt(subject, dev, row, harness):
    head = "The following are multiple choice questions (with answers) about "
    head += subject.replace("_", " ") if harness else fmt_subject_original(subject)[1:]
    if not harness:
        head = head.replace("about ", "about  ", 1)
    text = head + ".\n\n"
    for d in dev[:SHOTS]:
        text += example(d[0], d[1:-1], d[-1], harness) + ("\n\n" if harness else "")
    return text + example(row[0], row[1:-1], None, harness)

def tokenize(tok, text):
    return json.loads(run("tokenize", "--tokenizer", tok, "--no-special", "--json", text))["ids"]

def main():
    work = tempfile.mkdtemp()
    run("data", "shapes", "--split", "test", "--seed", "7", "--n", "1", "--size", "32",
        "--mmlu-questions", "8", "--out", work + "/shapes")
    out = ROOT + "/mmlu-shapes"
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out + "/dev"), os.makedirs(out + "/test")
    data = {}
    for s, k in KEEP.items():
        src = work + "/shapes/mmlu"
        shutil.copy("%s/dev/%s_dev.csv" % (src, s), out + "/dev/")
        rows = list(csv.reader(open("%s/test/%s_test.csv" % (src, s), newline="")))[:k]
        with open("%s/test/%s_test.csv" % (out, s), "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
        dev = list(csv.reader(open("%s/dev/%s_dev.csv" % (out, s), newline="")))
        data[s] = (dev, rows)
    # prompts in both formats with the letters to learn
    examples = []
    for s, (dev, rows) in data.items():
        for i, row in enumerate(rows, 1):
            letter = row[-1]
            if (s, i) in WRONG:
                letter = "ABCD"[("ABCD".index(letter) + 1) % 4]
            for harness in (0, 1):
                examples.append((prompt(s, dev, row, harness), letter))
    # a tokenizer for these texts, a config, then training
    init = work + "/init"
    os.makedirs(init)
    with open(work + "/corpus.txt", "w") as f:
        for p, l in examples:
            f.write(p + " " + l + "\n")
    run("train-tokenizer", "--corpus", work + "/corpus.txt", "--vocab-size", "320",
        "--out", init + "/tokenizer.json")
    cfg = json.load(open("models/recipe/config.json"))
    cfg["vision_config"].update(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                num_attention_heads=2, image_size=16, patch_size=8)
    cfg["text_config"].update(hidden_size=48, intermediate_size=96, num_hidden_layers=2,
                              num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                              vocab_size=320, max_position_embeddings=1024)
    json.dump(cfg, open(init + "/config.json", "w"), indent=2)
    pre = json.load(open("models/recipe/preprocessor_config.json"))
    pre["size"]["longest_edge"] = pre["max_image_size"]["longest_edge"] = 16
    json.dump(pre, open(init + "/preprocessor_config.json", "w"), indent=2)
    shutil.copy("models/recipe/generation_config.json", init)
    tok = init + "/tokenizer.json"
    with open(work + "/train.jsonl", "w") as f:
        for p, l in examples:
            ids_p, ids_w = tokenize(tok, p), tokenize(tok, p + " " + l)
            n = len(ids_p)
            f.write(json.dumps({"input_ids": ids_w,
                                "labels": [-100] * n + ids_w[n:]}) + "\n")
    run("train", "--config", init, "--data", work + "/train.jsonl", "--out", work + "/ckpt",
        "--steps", "400", "--batch", str(len(examples)), "--lr", "3e-3", "--warmup", "20",
        "--weight-decay", "0", "--seed", "1", "--threads", "1")
    model = ROOT + "/mmlu-tiny"
    for name in ("config.json", "model.safetensors", "tokenizer.json",
                 "preprocessor_config.json", "generation_config.json"):
        shutil.copy(work + "/ckpt/" + name, model)
    shutil.rmtree(work)

if __name__ == "__main__":
    main()
