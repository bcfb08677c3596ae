"""``python -m wmsd_ray.vlm.serve --model PATH``: a minimal OpenAI-compatible chat server.

Serves one transformers VLM on 127.0.0.1 (``/v1/chat/completions``, ``/v1/models``) so the
HTTP backend can be tried and tested with no external service; ``logprobs`` requests get
the first token's ``top_logprobs`` as OpenAI-compatible servers return them. One request at a time:
it is a test and demo server, not a production one (use vLLM's server for that).
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from PIL import Image


def _images_and_text(messages: list) -> tuple[list[np.ndarray], str]:
    images, texts = [], []
    for m in messages:
        content = m.get("content")
        if isinstance(content, str):
            texts.append(content)
            continue
        for c in content or []:
            if c.get("type") == "text":
                texts.append(c.get("text", ""))
            elif c.get("type") == "image_url":
                url = c["image_url"]["url"]
                raw = base64.b64decode(url.split(",", 1)[1])
                images.append(np.asarray(Image.open(io.BytesIO(raw)).convert("RGB")))
    return images, "\n".join(texts)


def make_server(vlm, model_name: str, port: int = 0) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": "not found"})
                return
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                images, text = _images_and_text(body["messages"])
                choice = {"index": 0, "finish_reason": "stop"}
                with lock:
                    if body.get("logprobs"):  # the first token's top log-probs, as OpenAI returns them
                        top = vlm.top_logprobs(images, text, int(body.get("top_logprobs") or 1))
                        reply = top[0][0]
                        choice["logprobs"] = {"content": [{"token": top[0][0], "logprob": top[0][1], "top_logprobs": [
                            {"token": t, "logprob": lp} for t, lp in top]}]}
                    else:
                        reply = vlm.generate(images, text, int(body.get("max_tokens", 256)),
                                             float(body.get("temperature", 0.0)), int(body.get("seed", 0)))
            except (KeyError, ValueError, TypeError) as e:
                self._send(400, {"error": f"bad request: {e}"})
                return
            choice["message"] = {"role": "assistant", "content": reply}
            self._send(200, {"object": "chat.completion", "model": model_name, "choices": [choice]})

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def main() -> None:
    from .transformers_backend import TransformersVLM

    ap = argparse.ArgumentParser(prog="python -m wmsd_ray.vlm.serve", description=__doc__)
    ap.add_argument("--model", required=True, help="a transformers VLM folder")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--device", default="auto", help="auto (a visible GPU, else the CPU), cpu or cuda:N")
    args = ap.parse_args()
    server = make_server(TransformersVLM(args.model, args.device), args.model, args.port)
    print(f"serving {args.model} on http://127.0.0.1:{server.server_address[1]}/v1", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
