#!/usr/bin/env python3
"""Data-parallel `ocellus train` under Open MPI (docs/DISTRIBUTED.md), on the tiny model:

- 20 steps on 2 ranks, twice: the same losses and the same checkpoint files, bit for bit;
- the loss curve of 2 and of 3 ranks (--oversubscribe) against one process with the same
  global batch, within the tolerance derived in docs/DISTRIBUTED.md (computed here from a
  second one-process run that only re-associates the same sums);
- a checkpoint written by 2 ranks resumed by 2 (the same bits as the uninterrupted run:
  optimizer shards gathered and data order resumed exactly), by 1 and by 3 (within the
  tolerance);
- one rank killed: the job ends within seconds (a deadline, so that a hang fails instead
  of stalling the suite), the launcher names the rank, and the last checkpoint resumes;
- exams, preference objectives (DPO, SimPO) and `scale run` on the ranks.

    mpi_test.py --cli build/ocellus --model tests/data/smolvlm-tiny --mpirun /usr/bin/mpirun
"""
import argparse
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ARGS = None
TMP = None
report = []
DATA = None
STEPS = 20
# global batch of 6 examples: 3 + 3 on 2 ranks, 2 + 2 + 2 on 3 (micro-batches of 2)
COMMON = ["--batch", "2", "--grad-accum", "3", "--lr", "3e-3", "--warmup", "2",
          "--schedule", "constant", "--clip", "1", "--seed", "5", "--threads", "1", "--json"]


def env():
    e = dict(os.environ)
    # root in CI containers; no ptrace-based single copy between ranks there either
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    e.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    e.setdefault("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
    e.setdefault("OMPI_MCA_rmaps_base_oversubscribe", "1")
    e["OMP_NUM_THREADS"] = "1"
    return e


def rank_env(np):
    """The environment of a launch: under mpirun, ASan builds (scripts/test-sanitize.sh)
    run without LeakSanitizer, whose exit-time tracer crashes among Open MPI's threads
    ("Tracer caught signal 11"); ASan's memory checks stay on, and the one-process runs
    (and every other test) keep the leak checks."""
    e = env()
    if np > 1 and "ASAN_OPTIONS" in e:
        e["ASAN_OPTIONS"] += ":detect_leaks=0"
    return e


def launcher(np):
    if np == 1:
        return [ARGS.cli]
    return [ARGS.mpirun, "-np", str(np), "--oversubscribe", "--bind-to", "none", ARGS.cli]


def steps_of(stdout):
    return [json.loads(l) for l in stdout.splitlines() if l.startswith("{")]


def train(np, out, start, *extra, steps=STEPS, data=None):
    cmd = launcher(np) + ["train", *start, "--data", data or DATA, "--out", out,
                          "--steps", str(steps), *COMMON, *extra]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=rank_env(np))
    assert r.returncode == 0, "%s\nexit %d\n%s" % (" ".join(cmd), r.returncode, r.stderr)
    return steps_of(r.stdout), r.stderr


def init():
    return ["--init", ARGS.model]


def read(path):
    with open(path, "rb") as f:
        return f.read()


U = 2.0 ** -24  # float32's unit roundoff


def n_params(stderr):
    m = re.search(r"ocellus train: (?:[a-z]+, )?(\d+) parameters", stderr)
    assert m, stderr
    return int(m.group(1))


def tolerance(ref, params):
    """Per step t: how far the loss of N ranks may be from one process's (the derivation is
    in docs/DISTRIBUTED.md). The ranks change only the order of float32 additions: the
    gradient's sums over a step's K tokens (and over the ranks) are re-associated, which
    moves each gradient element by a relative ~sqrt(K) u (rounding errors add like a random
    walk). AdamW's update is g-normalised, so each update moves by lr sqrt(K) u per element,
    lr sqrt(P K) u in norm over P parameters, and to first order the loss after it by at most
    |grad| times that. Summed over the steps before t, plus 8 roundings of the loss
    itself for its own sum."""
    tol, acc = [], 0.0
    for st in ref:
        tol.append(acc + 8.0 * U * abs(st["loss"]))
        acc += st["grad_norm"] * st["lr"] * math.sqrt(params * st["tokens"]) * U
    return tol


def check_close(name, got, ref, tol, first=0):
    assert len(got) == len(ref) - first, (name, len(got), len(ref))
    worst = 0.0
    for g, r, t in zip(got, ref[first:], tol[first:]):
        assert g["step"] == r["step"], (name, g["step"], r["step"])
        d = abs(g["loss"] - r["loss"])
        worst = max(worst, d / t)
        assert d <= t, "%s: step %d loss %.12g vs %.12g (one process): |d| %.3g > %.3g" % (
            name, g["step"], g["loss"], r["loss"], d, t)
        report.append("%s step %d: |d| %.3g, tolerance %.3g" % (name, g["step"], d, t))
    print("%s: losses within the tolerance (worst %.3g of it)" % (name, worst))


def test_repeat_and_one_process():
    a, err = train(2, os.path.join(TMP, "a"), init())
    b, _ = train(2, os.path.join(TMP, "b"), init())
    assert len(a) == STEPS, err
    assert all(s["ranks"] == 2 for s in a), a[0]
    assert all(s["comm_seconds"] > 0 for s in a), a[0]
    # bit for bit: the losses as printed (shortest round trip) and the files
    assert [s["loss"] for s in a] == [s["loss"] for s in b]
    assert [s["grad_norm"] for s in a] == [s["grad_norm"] for s in b]
    for f in ("model.safetensors", "optimizer.safetensors"):
        assert read(os.path.join(TMP, "a", f)) == read(os.path.join(TMP, "b", f)), f
    # rank 0 alone logs
    assert err.count("step 20/20") == 1, err
    # ZeRO-1: rank 0 keeps the AdamW moments of its half of the parameters
    mb = float(re.search(r"optimizer state ([0-9.]+) MB per rank", err).group(1))
    assert abs(mb - 8 * n_params(err) / 2 / 1e6) < 0.01, (mb, n_params(err))
    one, err1 = train(1, os.path.join(TMP, "one"), init())
    assert all(s["ranks"] == 1 and s["comm_seconds"] == 0 for s in one), one[0]
    tol = tolerance(one, n_params(err1))
    # the bound holds for a re-association within one process too (micro-batches of 1)
    yard, _ = train(1, os.path.join(TMP, "yard"), init(), "--batch", "1", "--grad-accum", "6")
    check_close("1 process, micro-batches of 1", yard, one, tol)
    # and it resolves a learning rate 0.1% higher (the test can fail): that run leaves it
    lr = COMMON.index("--lr") + 1
    common = list(COMMON)
    COMMON[lr] = "%.17g" % (float(COMMON[lr]) * 1.001)
    try:
        off, _ = train(1, os.path.join(TMP, "off"), init())
    finally:
        COMMON[:] = common
    beyond = max(abs(x["loss"] - y["loss"]) / t for x, y, t in zip(off, one, tol))
    assert beyond > 1, beyond
    print("lr 0.1%% higher, one process: %.3g times the tolerance" % beyond)
    check_close("2 ranks", a, one, tol)
    three, _ = train(3, os.path.join(TMP, "three"), init())
    assert all(s["ranks"] == 3 for s in three), three[0]
    check_close("3 ranks", three, one, tol)
    # the tokens of each step are those of the global batch, whatever the rank count
    assert [s["tokens"] for s in a] == [s["tokens"] for s in one] == [s["tokens"] for s in three]
    return a, one, tol


def test_resume(full2, one, tol):
    half = os.path.join(TMP, "half")
    first, _ = train(2, half, init(), steps=STEPS // 2)
    assert [s["loss"] for s in first] == [s["loss"] for s in full2[:STEPS // 2]]
    for np in (2, 1, 3):
        ck = os.path.join(TMP, "resume%d" % np)
        shutil.copytree(half, ck)
        rest, _ = train(np, ck, ["--resume", ck])
        assert [s["step"] for s in rest] == list(range(STEPS // 2 + 1, STEPS + 1)), rest
        if np == 2:  # the same rank count: the same bits as never stopping
            assert [s["loss"] for s in rest] == [s["loss"] for s in full2[STEPS // 2:]]
            for f in ("model.safetensors", "optimizer.safetensors"):
                assert read(os.path.join(ck, f)) == read(os.path.join(TMP, "a", f)), f
            print("resume 2 -> 2: the same bits as the uninterrupted run")
        else:  # the one-process curve, within the tolerance
            check_close("resume 2 -> %d" % np, rest, one, tol, first=STEPS // 2)


def st_metadata(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        return json.loads(f.read(n))["__metadata__"]


def rank_pids(mpirun_pid):
    """pid of each rank launched under mpirun_pid (its descendants' OMPI_COMM_WORLD_RANK)."""
    kids, found = {}, {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    todo = list(kids.get(mpirun_pid, []))
    while todo:
        p = todo.pop()
        todo += kids.get(p, [])
        try:
            with open("/proc/%d/environ" % p, "rb") as f:
                for kv in f.read().split(b"\0"):
                    if kv.startswith(b"OMPI_COMM_WORLD_RANK="):
                        found[int(kv.split(b"=")[1])] = p
        except OSError:
            pass
    return found


def test_killed_rank():
    ck = os.path.join(TMP, "killed")
    cmd = launcher(2) + ["train", "--init", ARGS.model, "--data", DATA, "--out", ck,
                         "--steps", "100000", "--save-every", "3", *COMMON]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=rank_env(2))
    try:
        step = 0
        while step < 7:
            line = p.stdout.readline()
            assert line, "the job ended early: " + p.stderr.read()
            if line.startswith("{"):
                step = json.loads(line)["step"]
        pids = rank_pids(p.pid)
        assert 1 in pids, pids
        os.kill(pids[1], signal.SIGKILL)
        t0 = time.monotonic()
        out, err = p.communicate(timeout=60)  # a deadline: a hang fails, it does not stall
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    assert p.returncode != 0, err
    assert "rank 1" in err, err
    print("killed rank 1 at step >= 7: the job ended in %.1f s; the launcher said:\n  %s" % (
        took, "\n  ".join(l for l in err.splitlines() if "rank 1" in l)))
    # the last checkpoint is whole and resumes (here on one process)
    with open(os.path.join(ck, "config.json")) as f:
        json.load(f)
    # the checkpoint is of a step that is a multiple of --save-every, at least 6
    at = int(st_metadata(os.path.join(ck, "optimizer.safetensors"))["ocellus_step"])
    assert at == int(st_metadata(os.path.join(ck, "model.safetensors"))["ocellus_step"])
    assert at >= 6 and at % 3 == 0, at
    r = subprocess.run([ARGS.cli, "train", "--resume", ck, "--data", DATA, "--out", ck,
                        "--steps", str(at + 2), *COMMON], capture_output=True, text=True,
                       timeout=600, env=env())
    assert r.returncode == 0, r.stderr
    assert [s["step"] for s in steps_of(r.stdout)] == [at + 1, at + 2], r.stdout
    print("the checkpoint of step %d resumed on one process" % at)


def test_stopped_rank():
    """A rank that stops answering without dying (SIGSTOP: a hung machine, a lost link):
    the launcher sees nothing; rank 0's deadline (--comm-timeout) names it and ends the
    job."""
    ck = os.path.join(TMP, "stopped")
    cmd = launcher(2) + ["train", "--init", ARGS.model, "--data", DATA, "--out", ck,
                         "--steps", "100000", "--comm-timeout", "3", *COMMON]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=rank_env(2))
    pids = {}
    try:
        step = 0
        while step < 3:
            line = p.stdout.readline()
            assert line, "the job ended early: " + p.stderr.read()
            if line.startswith("{"):
                step = json.loads(line)["step"]
        pids = rank_pids(p.pid)
        assert 1 in pids, pids
        os.kill(pids[1], signal.SIGSTOP)
        out, err = p.communicate(timeout=60)  # the deadline is 3 s: a hang fails here
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
        for q in pids.values():  # nothing left behind, stopped or not
            try:
                os.kill(q, signal.SIGKILL)
            except OSError:
                pass
    assert p.returncode != 0, err
    assert "ocellus train: rank 0 of 2: no answer from rank 1 for 3 s during" in err, err
    print("stopped rank 1: " + [l for l in err.splitlines() if "no answer" in l][0])


def evaluate(np, args):
    cmd = launcher(np) + ["eval", *args, "--json", "--threads", "1", "--quiet"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=rank_env(np))
    assert r.returncode == 0, "%s\nexit %d\n%s" % (" ".join(cmd), r.returncode, r.stderr)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    assert len(lines) == 1, r.stdout  # rank 0 alone prints
    j = json.loads(lines[0])
    j.pop("seconds", None)
    return j


def close(a, b, path=""):
    """a == b, floats within 1e-12 relative (sums of log-probabilities or VQA scores added
    in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert abs(a - b) <= 1e-12 * max(abs(a), abs(b), 1e-300), (path, a, b)
    elif isinstance(a, dict):
        assert sorted(a) == sorted(b), (path, sorted(a), sorted(b))
        for k in a:
            close(a[k], b[k], path + "." + k)
    elif isinstance(a, list):
        assert len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            close(x, y, "%s[%d]" % (path, i))
    else:
        assert a == b, (path, a, b)


def test_shared_error():
    """An error every rank meets (no such data file) is agreed: rank 0 says it once, every
    rank ends normally (no MPI_Abort), with the status's exit code."""
    missing = os.path.join(TMP, "nope.jsonl")
    cmd = launcher(2) + ["train", "--init", ARGS.model, "--data", missing, "--out",
                         os.path.join(TMP, "never"), "--steps", "1", "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=rank_env(2))
    assert r.returncode != 0, r.stderr
    said = [l for l in r.stderr.splitlines() if l.startswith("ocellus train:")]
    assert len(said) == 1 and "nope.jsonl" in said[0], r.stderr
    assert "MPI_ABORT" not in r.stderr, r.stderr
    print("an error of every rank: said once by rank 0: " + said[0])
    # an error of rank 1 alone (its own --data, launched MPMD): rank 0 names it
    args = ["train", "--init", ARGS.model, "--out", os.path.join(TMP, "never"), "--steps", "1",
            "--threads", "1", "--data"]
    cmd = [ARGS.mpirun, "--oversubscribe", "--bind-to", "none", "-np", "1", ARGS.cli, *args,
           DATA, ":", "-np", "1", ARGS.cli, *args, missing]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=rank_env(2))
    assert r.returncode != 0, r.stderr
    said = [l for l in r.stderr.splitlines() if l.startswith("ocellus train:")]
    assert len(said) == 1 and said[0].startswith("ocellus train: rank 1: ") and \
        "nope.jsonl" in said[0], r.stderr
    print("an error of rank 1 alone: " + said[0])


def test_validation():
    """--val on 3 ranks: each scores its block of the validation examples, rank 0 prints
    the mean over all of them once; after a first step at lr 0 (the warmup) the weights
    are those of one process, so the line is the same."""
    lines = []
    for np in (1, 3):
        _, err = train(np, os.path.join(TMP, "val%d" % np), init(), "--val", DATA,
                       "--val-every", "1", steps=1)
        lines.append([l for l in err.splitlines() if "validation loss" in l])
    assert len(lines[0]) == 1 and "(24 examples)" in lines[0][0], lines
    assert lines[1] == lines[0], lines
    print("validation on 3 ranks: " + lines[1][0])


def test_eval():
    """`ocellus eval` on 2 and 3 ranks: each scores its block of the items, rank 0 prints the
    counts of all, the same as one process (groups in the same order; corpus BLEU and
    CIDEr-D over every rank's captions)."""
    d = os.path.join(TMP, "exams")
    subprocess.run([ARGS.cli, "data", "shapes", "--split", "test", "--n", "7", "--size", "48",
                    "--out", d], check=True, capture_output=True, timeout=120)
    model = ["--model", ARGS.bundled]
    runs = [["mcq", "--data", os.path.join(d, "mmlu"), "--shots", "1"],
            ["mcq", "--data", os.path.join(d, "mcq_images.jsonl")],
            ["vqa", "--data", os.path.join(d, "vqa10.jsonl")],
            ["pope", "--data", os.path.join(d, "pope.jsonl")],
            ["captions", "--data", os.path.join(d, "captions5.jsonl"), "--max-tokens", "24"],
            ["perplexity", "--data", os.path.join(d, "captions.jsonl")]]
    for args in runs:
        if not os.path.exists(args[2]):
            raise AssertionError("no " + args[2])
        if args[0] == "perplexity":  # texts: the captions file's lines as JSONL {"text"}
            texts = os.path.join(d, "texts.jsonl")
            with open(args[2]) as f, open(texts, "w") as o:
                for l in f:
                    o.write(json.dumps({"text": json.loads(l)["caption"]}) + "\n")
            args = ["perplexity", "--data", texts]
        one = evaluate(1, [*args, *model])
        for np in (2, 3):
            close(evaluate(np, [*args, *model]), one, args[0])
        print("eval %s: 2 and 3 ranks give the counts of one process (n %s)" % (
            " ".join(args[:1] + [os.path.basename(args[2])]), one.get("n")))


def make_pairs():
    """Preference pairs from the shapes world's questions: the scene's answer chosen, the
    next question's different answer rejected (TRL's format, images relative to the file)."""
    d = os.path.join(TMP, "shapes")
    with open(os.path.join(d, "vqa.jsonl")) as f:
        rows = [json.loads(l) for l in f]
    path = os.path.join(d, "prefs.jsonl")
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            wrong = next(x["answer"] for x in rows[i + 1:] + rows[:i] if x["answer"] != r["answer"])
            f.write(json.dumps({"prompt": r["question"], "chosen": r["answer"],
                                "rejected": wrong, "images": [r["image"]]}) + "\n")
    return path


def test_preference():
    """--objective dpo and simpo on 2 and 3 ranks: each rank takes its block of a step's
    pairs (and of the reference's log-probabilities); the same bits on repeated runs, the
    reference cache equal to one process's bit for bit, the losses within the tolerance of
    one process (the same derivation: only sums are re-associated)."""
    pairs = make_pairs()
    for objective in ("dpo", "simpo"):
        extra = ["--objective", objective]
        a, err = train(2, os.path.join(TMP, "pa" + objective), init(), *extra, steps=10,
                       data=pairs)
        b, _ = train(2, os.path.join(TMP, "pb" + objective), init(), *extra, steps=10,
                     data=pairs)
        assert [s["loss"] for s in a] == [s["loss"] for s in b], (a, b)
        for f in ("model.safetensors", "optimizer.safetensors"):
            assert read(os.path.join(TMP, "pa" + objective, f)) == \
                read(os.path.join(TMP, "pb" + objective, f)), f
        assert all(s["ranks"] == 2 for s in a), a[0]
        assert err.count("step 10/10") == 1, err  # rank 0 alone logs
        one, err1 = train(1, os.path.join(TMP, "p1" + objective), init(), *extra, steps=10,
                          data=pairs)
        tol = tolerance(one, n_params(err1))
        check_close(objective + " on 2 ranks", a, one, tol)
        three, _ = train(3, os.path.join(TMP, "p3" + objective), init(), *extra, steps=10,
                         data=pairs)
        check_close(objective + " on 3 ranks", three, one, tol)
        if objective == "dpo":
            cache = "ref_logprobs.safetensors"
            for d in ("pa", "p3"):
                assert read(os.path.join(TMP, d + objective, cache)) == \
                    read(os.path.join(TMP, "p1" + objective, cache)), d
            print("dpo: the reference's log-probabilities of 2 and 3 ranks are one process's")
    # validation pairs on 3 ranks: the line of one process (first step at lr 0)
    lines = []
    for np in (1, 3):
        _, err = train(np, os.path.join(TMP, "pv%d" % np), init(), "--objective", "dpo",
                       "--val", pairs, "--val-every", "1", steps=1, data=pairs)
        lines.append([l for l in err.splitlines() if "validation loss" in l])
    assert len(lines[0]) == 1 and "pairs)" in lines[0][0], lines
    assert lines[1] == lines[0], lines
    print("dpo validation on 3 ranks: " + lines[1][0])


SCALE_RECIPE = {
    "family": "smolvlm",
    "data": {"kind": "shapes", "seed": 3, "train_scenes": 400, "val_scenes": 20,
             "test_scenes": 5, "questions_per_image": 2},
    "model": {"text_layers": 1, "text_heads": 1, "vision_layers": 1, "vision_heads": 1,
              "vision_width_ratio": 0.5, "width_multiple": 2},
    "target": {"width": 24, "tokens": 30000},
    "ladder": {"runs": 6, "max_compute_fraction": 0.5, "compute_ratio": 1.2,
               "tokens_exponent": 0.5},
    "train": {"batch": 2, "lr": 3e-3, "lr_ref_width": 24, "min_steps": 5, "checkpoints": 3,
              "init_std": 0.1, "seed": 2},
    "fit": {"bootstrap": 20},
}


def scale(np, out, recipe):
    cmd = launcher(np) + ["scale", "run", "--recipe", recipe, "--out", out, "--threads", "1"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=rank_env(np))
    assert r.returncode == 0, "%s\nexit %d\n%s" % (" ".join(cmd), r.returncode, r.stderr)
    return r


def curve(path):
    with open(path) as f:
        head = f.readline().strip().split(",")
        return [dict(zip(head, map(float, l.split(",")))) for l in f if l.strip()]


def test_scale():
    """`ocellus scale run` on 2 ranks: the ladder's runs shared out (each trained by one
    rank alone: the same results as one process, bit for bit), the target trained by both
    (its loss curve within the tolerance of one process's), rank 0 alone writing the
    study's files; run again, every run is found finished."""
    recipe = dict(SCALE_RECIPE, base=os.path.abspath(ARGS.bundled))
    path = os.path.join(TMP, "recipe.json")
    with open(path, "w") as f:
        json.dump(recipe, f)
    one_dir, two_dir = os.path.join(TMP, "scale1"), os.path.join(TMP, "scale2")
    scale(1, one_dir, path)
    r = scale(2, two_dir, path)
    assert "(rank 1)" in r.stderr and "(rank 0)" in r.stderr, r.stderr
    assert r.stderr.count("report written") == 1, r.stderr
    with open(os.path.join(one_dir, "plan.json")) as f:
        plan = json.load(f)
    names = [u["name"] for u in plan["runs"]]
    for name in names:
        res = [json.load(open(os.path.join(d, "runs", name, "result.json")))
               for d in (one_dir, two_dir)]
        if name != "target":
            for k in ("final_loss", "capability", "compute", "tokens"):
                assert res[0][k] == res[1][k], (name, k, res[0][k], res[1][k])
            assert read(os.path.join(one_dir, "runs", name, "model.safetensors")) == \
                read(os.path.join(two_dir, "runs", name, "model.safetensors")), name
    c1 = curve(os.path.join(one_dir, "runs", "target", "loss.csv"))
    c2 = curve(os.path.join(two_dir, "runs", "target", "loss.csv"))
    target = [u for u in plan["runs"] if u["name"] == "target"][0]
    check_close("scale target on 2 ranks", c2, c1, tolerance(c1, int(target["params"])))
    rep = [json.load(open(os.path.join(d, "report.json"))) for d in (one_dir, two_dir)]
    assert rep[0]["fit"] == rep[1]["fit"], (rep[0]["fit"], rep[1]["fit"])
    print("scale run on 2 ranks: ladder runs bit for bit, the same fit %s" % rep[1]["fit"])
    again = scale(2, two_dir, path)
    assert again.stderr.count("finished earlier") == len(names), again.stderr


def main():
    global ARGS, TMP, DATA
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--mpirun", required=True)
    ap.add_argument("--bundled", required=True)
    ARGS = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="ocellus-mpi-")
    DATA = os.path.join(TMP, "shapes", "conversations.jsonl")
    rc = 0
    try:
        subprocess.run([ARGS.cli, "data", "shapes", "--split", "train", "--n", "24", "--size",
                        "48", "--out", os.path.join(TMP, "shapes")], check=True,
                       capture_output=True, timeout=120)
        full2, one, tol = test_repeat_and_one_process()
        test_resume(full2, one, tol)
        test_killed_rank()
        test_stopped_rank()
        test_shared_error()
        test_validation()
        test_eval()
        test_preference()
        test_scale()
        print("\n".join(report))
    except Exception:
        traceback.print_exc()
        rc = 1
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
