#!/usr/bin/env python3
"""Integration tests of `ocellus serve` with the bundled model: each test starts the server
on a free loopback port (--port 0), talks HTTP to it with the standard library, and stops
it with SIGTERM (which must exit 0). Answers are checked against `ocellus caption` on the
same images; errors against OpenAI's format and status codes.

    serve_test.py --cli build/ocellus --model models/ocellus-shapes --examples examples [NAME...]
"""
import argparse
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

ARGS = None
CAPTIONS = {}       # image path -> `ocellus caption` text
CAPTION_JSON = {}   # image path -> `ocellus caption --json` object


class Server:
    """`ocellus serve --port 0 EXTRA...`, its port, and its log lines."""

    def __init__(self, *extra, env=None):
        cmd = [ARGS.cli, "serve", "--model", ARGS.model, "--port", "0", *extra]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = []
        self.port = None
        deadline = time.time() + 60
        while self.port is None:
            line = self.proc.stderr.readline()
            if not line:
                raise AssertionError("server exited: %s" % "".join(self.lines))
            self.lines.append(line)
            if "listening on http://" in line:
                self.port = int(line.split("listening on http://")[1].split(" ")[0].rsplit(":", 1)[1])
            if time.time() > deadline:
                raise AssertionError("server did not start")
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        for line in self.proc.stderr:
            self.lines.append(line)

    def log(self):
        return "".join(self.lines)

    def wait_log(self, text, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.log():
                return
            time.sleep(0.02)
        raise AssertionError("%r not in the log:\n%s" % (text, self.log()))

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError("server did not stop on SIGTERM")
        self.reader.join(timeout=5)
        assert rc == 0, "server exit code %d\n%s" % (rc, self.log())
        assert "ocellus serve: stopped" in self.log()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.stop()
        elif self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def request(port, method, path, body=None, headers=None, raw=None, timeout=60):
    """(status, headers, parsed JSON or text) of one request on a new connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    text = r.read().decode()
    c.close()
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return r.status, dict(r.getheaders()), parsed


def image_url(path):
    with open(path, "rb") as f:
        return "data:image/png;base64," + base64.b64encode(f.read()).decode()


def describe(path, url=None, **kw):
    body = {"model": "ocellus-shapes", "temperature": 0, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url or image_url(path)}},
        {"type": "text", "text": "Describe this image."}]}]}
    body.update(kw)
    return body


def chat(port, body, headers=None):
    return request(port, "POST", "/v1/chat/completions", body, headers)


def stream(port, body, on_event=None, headers=None):
    """Streams a completion; returns (status, events (parsed), raw text)."""
    body = dict(body, stream=True)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    if r.status != 200:
        text = r.read().decode()
        c.close()
        return r.status, [json.loads(text)], text
    assert r.getheader("Content-Type") == "text/event-stream"
    events, raw = [], []
    buf = b""
    while True:
        chunk = r.read1(65536) if hasattr(r, "read1") else r.read(1)
        if not chunk:
            break
        buf += chunk
        while b"\n\n" in buf:
            ev, buf = buf.split(b"\n\n", 1)
            ev = ev.decode()
            raw.append(ev)
            assert ev.startswith("data: "), ev
            payload = ev[6:]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
            if on_event:
                on_event(events[-1])
    c.close()
    return 200, events, "\n\n".join(raw)


def streamed_text(events):
    assert events[-1] == "[DONE]", events[-1]
    first = events[0]
    assert first["choices"][0]["delta"].get("role") == "assistant"
    ids = {e["id"] for e in events if e != "[DONE]"}
    assert len(ids) == 1, ids
    assert all(e["object"] == "chat.completion.chunk" for e in events if e != "[DONE]")
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events
                   if e != "[DONE]" and e["choices"])
    finishes = [e["choices"][0]["finish_reason"] for e in events if e != "[DONE]" and e["choices"]]
    assert all(f is None for f in finishes[:-1]) and finishes[-1] in ("stop", "length"), finishes
    return text, finishes[-1]


def assert_error(status, body, want_status, *words, param=None, code=None):
    assert status == want_status, "status %d, expected %d: %s" % (status, want_status, body)
    assert isinstance(body, dict) and set(body) == {"error"}, body
    e = body["error"]
    assert set(e) == {"message", "type", "param", "code"}, e
    assert isinstance(e["message"], str) and e["message"], e
    for w in words:
        assert w in e["message"], "%r not in %r" % (w, e["message"])
    if param is not None:
        assert e["param"] == param, e
    if code is not None:
        assert e["code"] == code, e


def examples():
    return [os.path.join(ARGS.examples, "shapes-%d.png" % i) for i in range(1, 5)]


def load_captions():
    for p in examples():
        out = subprocess.run([ARGS.cli, "caption", p, "--model", ARGS.model, "--no-stream"],
                             check=True, capture_output=True, text=True).stdout
        CAPTIONS[p] = out.rstrip("\n")
        js = subprocess.run([ARGS.cli, "caption", p, "--model", ARGS.model, "--json"],
                            check=True, capture_output=True, text=True).stdout
        CAPTION_JSON[p] = json.loads(js)


# ---- tests ------------------------------------------------------------------------------

def test_same_text_as_caption():
    """A non-streamed and a streamed completion with a base64 PNG give `ocellus caption`'s
    text, with the usage the CLI reports."""
    with Server() as s:
        for p in examples():
            want = CAPTIONS[p]
            st, hdr, r = chat(s.port, describe(p))
            assert st == 200, r
            assert hdr["Content-Type"] == "application/json"
            assert r["object"] == "chat.completion" and r["id"].startswith("chatcmpl-")
            assert r["model"] == "ocellus-shapes" and isinstance(r["created"], int)
            (choice,) = r["choices"]
            assert choice["index"] == 0 and choice["message"]["role"] == "assistant"
            assert choice["message"]["content"] == want, (choice, want)
            assert choice["finish_reason"] == "stop"
            cj = CAPTION_JSON[p]
            u = r["usage"]
            assert u["prompt_tokens"] == cj["prompt_tokens"], (u, cj)
            assert u["completion_tokens"] == len(cj["tokens"]), (u, cj)
            assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]

            st, events, raw = stream(s.port, describe(p, stream_options={"include_usage": True}))
            assert st == 200, raw
            text, finish = streamed_text(events)
            assert text == want and finish == "stop", (text, want)
            usage = events[-2]
            assert usage["choices"] == [] and usage["usage"]["prompt_tokens"] == u["prompt_tokens"]
            assert usage["usage"]["completion_tokens"] == u["completion_tokens"]
            assert all(e["usage"] is None for e in events[:-2])


def test_usage_cached_and_image_cache():
    """The same conversation again reuses the KV cache (all but the last prompt token) and
    the encoded image (the log says so); a longer conversation reuses its prefix."""
    p = examples()[0]
    with Server() as s:
        st, _, a = chat(s.port, describe(p))
        st2, _, b = chat(s.port, describe(p))
        assert st == st2 == 200
        assert a["usage"]["prompt_tokens_details"]["cached_tokens"] == 0
        assert b["usage"]["prompt_tokens_details"]["cached_tokens"] == b["usage"]["prompt_tokens"] - 1
        s.wait_log("images 1 (cached 1)")
        follow = describe(p)
        follow["messages"] += [{"role": "assistant", "content": a["choices"][0]["message"]["content"]},
                               {"role": "user", "content": "What colour is the cross?"}]
        st, _, c = chat(s.port, follow)
        assert st == 200, c
        assert c["choices"][0]["message"]["content"] == "green", c
        assert c["usage"]["prompt_tokens_details"]["cached_tokens"] >= a["usage"]["prompt_tokens"]
        assert c["usage"]["prompt_tokens"] > a["usage"]["prompt_tokens"] + a["usage"]["completion_tokens"]


def test_parameters():
    """max_tokens / max_completion_tokens, stop strings (streamed and not), system prompts,
    string content, seeds."""
    p = examples()[0]
    want = CAPTIONS[p]
    with Server() as s:
        st, _, r = chat(s.port, describe(p, max_tokens=3))
        assert st == 200 and r["choices"][0]["finish_reason"] == "length", r
        assert r["usage"]["completion_tokens"] == 3
        assert want.startswith(r["choices"][0]["message"]["content"])
        st, _, r = chat(s.port, describe(p, max_completion_tokens=2, max_tokens=50))
        assert r["usage"]["completion_tokens"] == 2, r
        cut = want.index("cross")
        for stop in ("cross", ["zzz", "cross"], [" cr", "white"]):
            st, _, r = chat(s.port, describe(p, stop=stop))
            assert st == 200, r
            end = want.index(" cr") if stop == [" cr", "white"] else cut
            assert r["choices"][0]["message"]["content"] == want[:end], (stop, r)
            assert r["choices"][0]["finish_reason"] == "stop"
            st, events, raw = stream(s.port, describe(p, stop=stop))
            assert streamed_text(events) == (want[:end], "stop"), raw
        # a stop string that never occurs changes nothing
        st, _, r = chat(s.port, describe(p, stop="purple"))
        assert r["choices"][0]["message"]["content"] == want
        # system prompt, and content as a plain string (text only)
        body = describe(p)
        body["messages"].insert(0, {"role": "system", "content": "You describe pictures."})
        st, _, r = chat(s.port, body)
        assert st == 200, r
        assert isinstance(r["choices"][0]["message"]["content"], str)
        st, _, r = chat(s.port, {"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 5})
        assert st == 200 and r["usage"]["completion_tokens"] <= 5, r
        # sampling with a seed is reproducible
        body = describe(p, temperature=1.5, top_p=0.95, seed=7, max_tokens=20)
        outs = {chat(s.port, body)[2]["choices"][0]["message"]["content"] for _ in range(3)}
        assert len(outs) == 1, outs


def test_errors():
    """Each refusal: its status, OpenAI's error object, the field or limit named."""
    p = examples()[0]
    with Server("--max-images", "2", "--max-tokens", "100") as s:
        st, _, r = request(s.port, "POST", "/v1/chat/completions", raw="{not json")
        assert_error(st, r, 400, "not valid JSON")
        st, _, r = request(s.port, "POST", "/v1/chat/completions", raw="[1]")
        assert_error(st, r, 400, "JSON object")
        cases = [
            ({"model": "x"}, "messages", "required"),
            ({"messages": []}, "messages", "non-empty"),
            ({"messages": [{"role": "tool", "content": "x"}]}, "messages", "'tool' is not supported"),
            ({"messages": [{"role": "user"}]}, "messages", "content is required"),
            ({"messages": [{"role": "user", "content": 5}]}, "messages", "string or a list"),
            ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "messages", "not supported"),
            ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages", "text must be a string"),
            ({"messages": [{"role": "assistant", "content": [{"type": "image_url", "image_url": {"url": "data:,"}}]}]},
             "messages", "only user messages"),
            (dict(describe(p), temperature="hot"), "temperature", "must be a number"),
            (dict(describe(p), temperature=3), "temperature", "between 0 and 2"),
            (dict(describe(p), top_p=1.5), "top_p", "between"),
            (dict(describe(p), max_tokens=0), "max_tokens", "between"),
            (dict(describe(p), max_tokens=2.5), "max_tokens", "integer"),
            (dict(describe(p), n=2), "n", "must be 1"),
            (dict(describe(p), stop=["a", "b", "c", "d", "e"]), "stop", "the limit is 4"),
            (dict(describe(p), stop=""), "stop", "empty"),
            (dict(describe(p), stream="yes"), "stream", "true or false"),
            (dict(describe(p), stream_options={"include_usage": True}), "stream_options", "only allowed"),
            (dict(describe(p), model=3), "model", "string"),
            (dict(describe(p), logprobs=True), "logprobs", "not supported"),
            (dict(describe(p), presence_penalty=0.5), "presence_penalty", "not supported"),
            (dict(describe(p), tools=[{"type": "function"}]), "tools", "not supported"),
            (dict(describe(p), response_format={"type": "json_object"}), "response_format", "not supported"),
        ]
        for body, param, words in cases:
            st, _, r = chat(s.port, body)
            assert_error(st, r, 400, words, param=param)
        # limits named
        st, _, r = chat(s.port, describe(p, max_tokens=101))
        assert_error(st, r, 400, "the limit is 100", param="max_tokens", code="max_tokens_exceeded")
        three = describe(p)
        three["messages"][0]["content"] = [{"type": "image_url", "image_url": {"url": image_url(p)}}] * 3
        st, _, r = chat(s.port, three)
        assert_error(st, r, 400, "3 images", "the limit is 2", code="too_many_images")
        long = {"messages": [{"role": "user", "content": "circle " * 700}]}
        st, _, r = chat(s.port, long)
        assert_error(st, r, 400, "context is 512", code="context_length_exceeded")
        st, ev, _ = stream(s.port, long)
        assert_error(st, ev[0], 400, "context is 512", code="context_length_exceeded")
        # image URLs
        for url, words in [("data:image/png;base64,@@@@", "not valid base64"),
                           ("data:image/png;base64," + base64.b64encode(b"hello, not a png").decode(), "messages[0].content[0]"),
                           ("data:text/plain;base64,aGVsbG8=", "not an image"),
                           ("data:image/png,rawdata", "only base64"),
                           ("https://example.com/cat.png", "not fetched"),
                           ("file:///etc/passwd", "--allow-dir"),
                           ("ftp://x/y.png", "unsupported image URL")]:
            st, _, r = chat(s.port, describe(p, url=url))
            assert_error(st, r, 400, words, param="messages")
        # routes and methods
        st, _, r = request(s.port, "GET", "/v1/nothing")
        assert_error(st, r, 404, "Unknown request URL", code="unknown_url")
        st, _, r = request(s.port, "GET", "/v1/models/gpt-4")
        assert_error(st, r, 404, "gpt-4", code="model_not_found")
        st, _, r = request(s.port, "GET", "/v1/chat/completions")
        assert_error(st, r, 405, "use POST")
        st, _, r = request(s.port, "POST", "/v1/models", raw="{}")
        assert_error(st, r, 405, "use GET")
        # the server is still fine after all that
        st, _, r = chat(s.port, describe(p))
        assert st == 200 and r["choices"][0]["message"]["content"] == CAPTIONS[p]


def test_body_limit():
    """A body over --max-body-mb gets 413, whether or not the client waits for 100-continue."""
    p = examples()[0]
    with Server("--max-body-mb", "1") as s:
        big = describe(p)
        big["messages"][0]["content"].append({"type": "text", "text": "x" * (1 << 20)})
        st, _, r = chat(s.port, big)
        assert_error(st, r, 413, "over the limit of 1048576 bytes", code="request_too_large")
        # a client that waits for "100 Continue" (as curl does) gets the 413 instead
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=30)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     b"application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % (2 << 20))
        reply = b""
        while b"\r\n\r\n" not in reply:
            reply += sock.recv(4096)
        sock.close()
        assert reply.startswith(b"HTTP/1.1 413"), reply
        st, _, r = chat(s.port, describe(p))
        assert st == 200, r


def test_api_key():
    p = examples()[0]
    with Server("--api-key", "sekrit") as s:
        st, _, r = chat(s.port, describe(p))
        assert_error(st, r, 401, "didn't provide an API key", code="invalid_api_key")
        st, _, r = chat(s.port, describe(p), headers={"Authorization": "Bearer wrong"})
        assert_error(st, r, 401, "Incorrect API key", code="invalid_api_key")
        st, _, r = request(s.port, "GET", "/v1/models", headers={"Authorization": "Bearer sekri"})
        assert_error(st, r, 401, "Incorrect API key")
        st, _, r = chat(s.port, describe(p), headers={"Authorization": "Bearer sekrit"})
        assert st == 200 and r["choices"][0]["message"]["content"] == CAPTIONS[p]
        st, _, r = request(s.port, "GET", "/health")  # open, for load balancers
        assert st == 200 and r["status"] == "ok", r
    env = dict(os.environ, OCELLUS_API_KEY="fromenv")
    with Server(env=env) as s:
        st, _, r = request(s.port, "GET", "/v1/models", headers={"Authorization": "Bearer fromenv"})
        assert st == 200 and r["data"][0]["id"] == "ocellus-shapes", r
        st, _, r = request(s.port, "GET", "/v1/models")
        assert st == 401


def test_models_and_health():
    with Server("--parallel", "3", "--model-id", "shapes") as s:
        st, _, r = request(s.port, "GET", "/v1/models")
        assert st == 200 and r["object"] == "list" and [m["id"] for m in r["data"]] == ["shapes"], r
        st, _, r = request(s.port, "GET", "/v1/models/shapes")
        assert st == 200 and r["object"] == "model" and r["owned_by"] == "ocellus", r
        st, _, r = request(s.port, "GET", "/health")
        assert st == 200 and r == {"status": "ok", "slots_idle": 3, "slots_processing": 0,
                                   "requests_waiting": 0}, r
        st, _, r = chat(s.port, describe(examples()[0]))
        assert r["model"] == "shapes"
        s.stop(signal.SIGINT)  # Ctrl-C stops it as SIGTERM does


def test_file_urls():
    """file:// URLs: inside --allow-dir they work; outside, through '..', or through a
    symlink that leads out they are refused with the same message."""
    p = examples()[1]
    d = tempfile.mkdtemp(prefix="ocellus-serve-")
    outside = tempfile.mkdtemp(prefix="ocellus-outside-")
    try:
        os.mkdir(os.path.join(d, "sub dir"))
        shutil.copy(p, os.path.join(d, "sub dir", "a b.png"))
        shutil.copy(p, os.path.join(outside, "secret.png"))
        os.symlink(os.path.join(outside, "secret.png"), os.path.join(d, "link.png"))
        os.symlink(outside, os.path.join(d, "linkdir"))
        shutil.copy(p, os.path.join(d, "inside.png"))
        os.symlink(os.path.join(d, "inside.png"), os.path.join(d, "ok-link.png"))
        with Server("--allow-dir", d) as s:
            for url in ["file://" + d + "/sub%20dir/a%20b.png", "file://localhost" + d + "/inside.png",
                        "file://" + d + "/ok-link.png"]:
                st, _, r = chat(s.port, describe(p, url=url))
                assert st == 200, (url, r)
                assert r["choices"][0]["message"]["content"] == CAPTIONS[p]
            for url in ["file://" + outside + "/secret.png", "file://" + d + "/../" + os.path.basename(outside) + "/secret.png",
                        "file://" + d + "/link.png", "file://" + d + "/linkdir/secret.png",
                        "file://" + d + "/missing.png", "file://" + d, "file://" + d + "/inside.png%00.txt",
                        "file://relative.png", "file:///etc/shadow"]:
                st, _, r = chat(s.port, describe(p, url=url))
                assert st == 400, (url, st, r)
                e = r["error"]["message"]
                assert "not a readable file inside --allow-dir" in e or "not an absolute file:// URL" in e, (url, e)
                assert os.path.basename(outside) not in e or url.find(os.path.basename(outside)) >= 0
    finally:
        shutil.rmtree(d)
        shutil.rmtree(outside)


def test_parallel_clients():
    """8 concurrent clients (streaming and not) on --parallel 2: all answered correctly."""
    imgs = examples() * 2
    results = [None] * len(imgs)

    def client(i):
        try:
            p = imgs[i]
            if i % 2:
                st, events, raw = stream(port, describe(p))
                results[i] = (st, streamed_text(events)[0] if st == 200 else raw)
            else:
                st, _, r = chat(port, describe(p))
                results[i] = (st, r["choices"][0]["message"]["content"] if st == 200 else r)
        except Exception as e:  # reported below
            results[i] = (0, repr(e))

    with Server("--parallel", "2") as s:
        port = s.port
        threads = [threading.Thread(target=client, args=(i,)) for i in range(len(imgs))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        for i, (st, text) in enumerate(results):
            assert st == 200 and text == CAPTIONS[imgs[i]], (i, st, text)
        # the log line follows the response
        deadline = time.time() + 30
        while s.log().count("POST /v1/chat/completions 200") < 8 and time.time() < deadline:
            time.sleep(0.02)
        assert s.log().count("POST /v1/chat/completions 200") == 8, s.log()


# A long answer: llama.cpp's ignore_eos extension makes it exactly max_tokens.
LONG = {"messages": [{"role": "user", "content": "Tell me a long story."}], "ignore_eos": True,
        "max_tokens": 450}


def first_chunk_then(port, body, action):
    """Starts a streaming request, waits for its first content event, then returns
    action(connection, response)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    c.request("POST", "/v1/chat/completions", body=json.dumps(dict(body, stream=True)),
              headers={"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    while True:
        line = r.readline()
        if not line:
            raise AssertionError("stream ended early")
        if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
            break
    try:
        return action(c, r)
    finally:
        c.close()


def test_client_leaves_mid_stream():
    """A client that disconnects mid-stream is dropped (its generation stops) and the other
    clients are answered as usual."""
    p = examples()
    with Server("--parallel", "2") as s:
        st, _, full = chat(s.port, LONG)
        assert st == 200 and full["usage"]["completion_tokens"] == 450, full
        assert full["choices"][0]["finish_reason"] == "length"

        def leave(c, r):
            c.sock.shutdown(socket.SHUT_RDWR)
            c.sock.close()
        others = []
        t = threading.Thread(target=lambda: others.extend(chat(s.port, describe(q)) for q in p))
        t.start()
        first_chunk_then(s.port, LONG, leave)
        t.join(120)
        for q, (st, _, r) in zip(p, others):
            assert st == 200 and r["choices"][0]["message"]["content"] == CAPTIONS[q], r
        s.wait_log("client left mid-stream")
        s.wait_log("the client left; generation stopped after ")
        made = int(s.log().split("generation stopped after ")[1].split()[0])
        assert made < 450, s.log()
        st, _, r = request(s.port, "GET", "/health")
        deadline = time.time() + 30
        while r["slots_processing"] and time.time() < deadline:
            time.sleep(0.05)
            st, _, r = request(s.port, "GET", "/health")
        assert r["slots_processing"] == 0, r
        st, events, raw = stream(s.port, describe(p[0]))
        assert streamed_text(events)[0] == CAPTIONS[p[0]]


def test_overload_503():
    """--parallel 1 --queue 0: a request that arrives while the session is busy gets 503."""
    p = examples()[0]
    with Server("--parallel", "1", "--queue", "0") as s:
        def second(c, resp):
            st, hdr, r = chat(s.port, describe(p))
            rest = resp.read().decode()  # the long answer still completes
            return st, hdr, r, rest
        st, hdr, r, rest = first_chunk_then(s.port, LONG, second)
        assert_error(st, r, 503, "busy", code="server_overloaded")
        assert hdr.get("Retry-After") == "1"
        assert "data: [DONE]" in rest
        st, _, r = chat(s.port, describe(p))  # free again
        assert st == 200, r


def test_graceful_stop():
    """SIGTERM while a stream runs: the stream completes, then the server exits 0."""
    s = Server()
    try:
        def term(c, r):
            s.proc.send_signal(signal.SIGTERM)
            return r.read().decode()
        rest = first_chunk_then(s.port, LONG, term)
        assert rest.rstrip().endswith("data: [DONE]"), rest[-200:]
        assert s.proc.wait(timeout=60) == 0
        s.reader.join(timeout=5)
        assert "stopping: finishing the requests under way" in s.log(), s.log()
        assert "POST /v1/chat/completions 200" in s.log()
        try:
            socket.create_connection(("127.0.0.1", s.port), timeout=5).close()
            refused = False
        except OSError:
            refused = True
        assert refused, "the port still accepts connections"
    finally:
        if s.proc.poll() is None:
            s.proc.kill()


def test_startup_errors():
    """A port in use, a missing --allow-dir, a bad address: a message and an exit code."""
    with Server() as s:
        for extra, words, code in [(["--port", str(s.port)], "cannot listen on 127.0.0.1 port", 4),
                                   (["--allow-dir", "/nonexistent-dir"], "--allow-dir /nonexistent-dir", 4),
                                   (["--host", "not-an-address.invalid"], "cannot listen on", 3),
                                   (["--parallel", "0"], "--parallel must be between", 2),
                                   (["--bogus"], "unknown option --bogus", 2)]:
            args = [ARGS.cli, "serve", "--model", ARGS.model] + (["--port", "0"] if "--port" not in extra else []) + extra
            r = subprocess.run(args, capture_output=True, text=True, timeout=60)
            assert r.returncode == code and words in r.stderr, (extra, r.returncode, r.stderr)


def test_log_lines():
    """One line per request: method, route, status, tokens, ms."""
    p = examples()[0]
    with Server() as s:
        chat(s.port, describe(p))
        request(s.port, "GET", "/nope")
        s.wait_log("GET /nope 404")
        s.wait_log("POST /v1/chat/completions 200")
        lines = [l for l in s.log().splitlines() if "POST /v1/chat/completions" in l]
        assert len(lines) == 1, s.log()
        l = lines[0]
        assert " 200 tokens " in l and " ms" in l and "images 1" in l, l


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("names", nargs="*")
    ARGS = ap.parse_args()
    load_captions()
    tests = [(n, f) for n, f in globals().items() if n.startswith("test_") and callable(f)]
    if ARGS.names:
        tests = [(n, f) for n, f in tests if any(x in n for x in ARGS.names)]
    passed = failed = 0
    for name, f in tests:
        t0 = time.time()
        try:
            f()
            passed += 1
            print("ok   %s (%.1f s)" % (name, time.time() - t0), flush=True)
        except Exception:
            failed += 1
            print("FAIL %s\n%s" % (name, traceback.format_exc()), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
