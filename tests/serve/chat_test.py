#!/usr/bin/env python3
"""`ocellus chat` with the bundled model, scripted through a pipe and typed on a
pseudo-terminal (line editing on, as a person uses it): /image, a second turn about the
same image answered from the KV cache (no image encoded again), /save read back by
`ocellus data check`, /clear, errors that do not end the chat, and Ctrl-C during an answer
(the answer stops, the chat goes on).

    chat_test.py --cli build/ocellus --model models/ocellus-shapes --examples examples
"""
import argparse
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

ARGS = None
TMP = None


def image(i):
    return os.path.join(ARGS.examples, "shapes-%d.png" % i)


def caption(path):
    return subprocess.run([ARGS.cli, "caption", path, "--model", ARGS.model, "--no-stream"],
                          check=True, capture_output=True, text=True).stdout.rstrip("\n")


def run_pipe(lines, *extra):
    r = subprocess.run([ARGS.cli, "chat", "--model", ARGS.model, "--verbose", *extra],
                       input="".join(l + "\n" for l in lines), capture_output=True, text=True,
                       timeout=120)
    return r.returncode, r.stdout, r.stderr


def stats(stderr):
    """The --verbose lines: (prompt, cached, generated, finish, encoded, reused) per turn."""
    pat = re.compile(r"\[prompt (\d+) tokens, (\d+) cached; (\d+) generated in \d+ ms \((\w+)\); "
                     r"images (\d+) encoded, (\d+) seen before\]")
    return [tuple(int(x) if x.isdigit() else x for x in m.groups()) for m in pat.finditer(stderr)]


def test_pipe_turns_and_save():
    cap = caption(image(1))
    saved = os.path.join(TMP, "chat.jsonl")
    rc, out, err = run_pipe(["/image " + image(1), "Describe this image.",
                             "What colour is the cross?", "/save " + saved])
    assert rc == 0, err
    assert out.splitlines() == [cap, "green"], (out, err)
    s = stats(err)
    assert len(s) == 2, err
    # turn 1 encoded the image; turn 2 reused it from the KV cache: no image encoded, the
    # whole first exchange cached
    assert s[0][4] == 1 and s[0][1] == 0, s
    assert s[1][4] == 0 and s[1][5] == 0 and s[1][1] >= s[0][0] + s[0][2] - 1, s
    line = json.load(open(saved))
    assert [m["role"] for m in line["messages"]] == ["user", "assistant", "user", "assistant"]
    assert line["messages"][0]["content"] == [{"type": "image"},
                                              {"type": "text", "text": "Describe this image."}]
    assert line["messages"][1]["content"] == cap and line["messages"][3]["content"] == "green"
    assert line["images"] == [os.path.realpath(image(1))]
    chk = subprocess.run([ARGS.cli, "data", "check", saved, "--model", ARGS.model],
                         capture_output=True, text=True)
    assert chk.returncode == 0 and "1 examples, 1 images" in chk.stdout, chk


def test_pipe_commands_and_errors():
    cap2 = caption(image(2))
    saved = os.path.join(TMP, "sys.jsonl")
    rc, out, err = run_pipe([
        "/image " + os.path.join(TMP, "missing.png"),  # an error, the chat goes on
        "/image " + image(2), "/image " + image(2), "/clear",  # /clear drops attachments
        "/frobnicate", "/image",
        "/image " + image(2), "Describe this image.",
        "/save " + saved, "/quit", "never read"], "--system", "Be brief.")
    assert rc == 0, err
    assert out.splitlines() == [cap2], (out, err)
    assert "missing.png" in err and "unknown command /frobnicate" in err and "needs a path" in err
    s = stats(err)
    assert len(s) == 1 and s[0][5] == 1, (s, err)  # the image had been seen before /clear
    line = json.load(open(saved))
    assert line["messages"][0] == {"role": "system", "content": "Be brief."}, line
    chk = subprocess.run([ARGS.cli, "data", "check", saved, "--model", ARGS.model],
                         capture_output=True, text=True)
    assert chk.returncode == 0, chk
    # images on the command line attach to the first message
    rc, out, err = run_pipe(["Describe this image."], image(3))
    assert rc == 0 and out.splitlines() == [caption(image(3))], (out, err)
    # a full context is an error, and /clear recovers
    rc, out, err = run_pipe(["circle " * 700, "/clear", "/image " + image(1), "Describe this image."])
    assert rc == 0 and "context is 512" in err and "/clear" in err, err
    assert out.splitlines() == [caption(image(1))], out


def test_pipe_interrupt():
    """SIGINT during an answer read from a pipe stops that answer only."""
    p = subprocess.Popen([ARGS.cli, "chat", "--model", ARGS.model, "--ignore-eos",
                          "--max-tokens", "450"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    p.stdin.write(b"Tell me a long story.\n")
    p.stdin.flush()
    first = os.read(p.stdout.fileno(), 1)  # the answer has begun
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(b"/clear\n/image " + image(1).encode() + b"\nDescribe this image.\n",
                             timeout=120)
    assert p.returncode == 0, err
    lines = (first + out).decode().splitlines()
    assert len(lines) == 2 and lines[0].endswith(" [interrupted]"), lines
    assert len(lines[0].split()) < 400, lines[0]
    # the next answer is whole (--ignore-eos: it goes on past the caption)
    assert lines[1].startswith(caption(image(1))) and "[interrupted]" not in lines[1], lines


class Pty:
    """The chat on a pseudo-terminal: type lines, read the screen's bytes."""

    def __init__(self, *extra):
        env = dict(os.environ, HOME=TMP, TERM="xterm")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            try:
                os.execve(ARGS.cli, [ARGS.cli, "chat", "--model", ARGS.model, *extra], env)
            finally:
                os._exit(127)
        self.out = b""

    def read_until(self, pattern, timeout=60):
        deadline = time.time() + timeout
        rx = re.compile(pattern.encode() if isinstance(pattern, str) else pattern, re.S)
        while not rx.search(self.out):
            left = deadline - time.time()
            if left <= 0:
                raise AssertionError("%r not seen; screen:\n%r" % (pattern, self.out[-2000:]))
            r, _, _ = select.select([self.fd], [], [], left)
            if r:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:
                    chunk = b""
                if not chunk and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                    time.sleep(0.05)  # the terminal is not set up yet
                    continue
                if not chunk:
                    raise AssertionError("chat ended; screen:\n%r" % self.out[-2000:])
                self.out += chunk
        return self.out

    def type(self, text):
        os.write(self.fd, text.encode())

    def mark(self):
        self.out = b""

    def wait(self):
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_terminal():
    hist = os.path.join(TMP, "history")
    cap = caption(image(1))
    t = Pty("--verbose", "--history", hist, "--ignore-eos", "--max-tokens", "450")
    try:
        t.read_until(r"> ")
        t.type("/image " + image(1) + "\r")
        t.read_until(r"attached: 1 tile")
        # Ctrl-C during a (long) answer: the answer stops, the prompt comes back
        t.mark()
        t.type("Describe this image.\r")
        t.read_until(re.escape(cap[:10]))
        t.type("\x03")
        t.read_until(r"\[interrupted\].*> ")
        assert b"(cancelled)" in t.out, t.out[-500:]
        # the interrupted answer stays in the conversation; the image is still there
        t.mark()
        t.type("What colour is the cross?\r")
        t.read_until(r"green")
        t.read_until(r"images 0 encoded, 0 seen before\].*> ")
        # Ctrl-C at the prompt: a new prompt, not the end. libedit prints the prompt before
        # it takes the terminal; a Ctrl-C in that first millisecond reaches the chat's own
        # handler while nothing reads, and is lost (a known limit: press it again). Give
        # the prompt a moment.
        time.sleep(0.2)
        t.mark()
        t.type("\x03")
        t.read_until(r"> ")
        # line editing: Ctrl-A / Ctrl-E and backspace edit the line before it is sent
        t.mark()
        t.type("/quitxx\x7f\x7f\x01\x05\r")
        assert t.wait() == 0, t.out
    finally:
        try:
            os.kill(t.pid, signal.SIGKILL)
        except OSError:
            pass
    hist_text = open(hist).read().replace("\\040", " ")  # libedit's format
    assert "What colour is the cross?" in hist_text and "/quit" in hist_text, hist_text


def main():
    global ARGS, TMP
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("names", nargs="*")
    ARGS = ap.parse_args()
    TMP = tempfile.mkdtemp(prefix="ocellus-chat-")
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    if ARGS.names:
        tests = [(n, f) for n, f in tests if any(x in n for x in ARGS.names)]
    passed = failed = 0
    try:
        for name, f in tests:
            t0 = time.time()
            try:
                f()
                passed += 1
                print("ok   %s (%.1f s)" % (name, time.time() - t0), flush=True)
            except Exception:
                failed += 1
                print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
    finally:
        if not os.environ.get("OC_KEEP_TMP"):
            shutil.rmtree(TMP, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
