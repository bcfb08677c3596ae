"""Any VLM served behind an OpenAI-compatible ``/v1/chat/completions`` endpoint.

Images go as base64 PNG data URLs. Each request has a timeout and bounded retries with
backoff (connection errors, timeouts, 5xx, malformed JSON); a semaphore caps concurrent
requests across threads. The judge asks for the first token's ``top_logprobs`` (vLLM's
server and OpenAI's return them) and takes log p(yes) - log p(no) from them; only a reply
without them sends the judge to the labelled text fallback.
"""
from __future__ import annotations

import base64
import io
import json
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from .yesno import reward_from_top_logprobs


class HTTPBackendError(RuntimeError):
    pass


def image_data_url(image: np.ndarray) -> str:
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def chat_messages(images: list[np.ndarray], prompt: str) -> list[dict]:
    """One OpenAI-style user message: the images as data URLs, then the prompt."""
    content = [{"type": "image_url", "image_url": {"url": image_data_url(im)}} for im in images]
    content.append({"type": "text", "text": prompt})
    return [{"role": "user", "content": content}]


class OpenAIVLM:
    exposes_logits = True
    score_source = "logprobs"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0,
                 retries: int = 2, concurrency: int = 4, backoff_s: float = 0.2, top_logprobs: int = 20):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.api_key = model, api_key
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self._slots = threading.BoundedSemaphore(concurrency)
        self.concurrency, self.top_logprobs = concurrency, top_logprobs
        self.stats = {"requests": 0, "retries": 0, "failures": 0}

    @classmethod
    def from_config(cls, vc) -> "OpenAIVLM":
        return cls(vc.base_url, vc.model, os.environ.get(vc.api_key_env), vc.timeout_s, vc.retries, vc.concurrency,
                   top_logprobs=vc.top_logprobs)

    def _post(self, body: dict) -> dict:
        data = json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats["retries"] += 1
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                with self._slots:
                    self.stats["requests"] += 1
                    req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                    with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                        payload = json.loads(resp.read().decode("utf-8", errors="replace"))
                return payload
            except urllib.error.HTTPError as e:
                detail = e.read().decode("utf-8", errors="replace")[:300] if e.fp is not None else ""
                last = f"HTTP {e.code}" + (f" ({detail})" if detail else "")
                if e.code < 500 and e.code != 429:
                    break  # a client error will not heal by retrying
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except ValueError as e:
                last = f"malformed JSON reply ({e})"
        self.stats["failures"] += 1
        raise HTTPBackendError(f"{self.url}: {last} after {self.retries + 1} attempt(s)")

    def generate(self, images: list[np.ndarray], prompt: str, max_new_tokens: int = 256,
                 temperature: float = 0.0, seed: int = 0) -> str:
        payload = self._post({"model": self.model, "messages": chat_messages(images, prompt),
                              "max_tokens": max_new_tokens, "temperature": temperature, "seed": seed})
        try:
            text = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as e:
            raise HTTPBackendError(f"{self.url}: reply has no choices[0].message.content") from e
        if not isinstance(text, str):
            raise HTTPBackendError(f"{self.url}: reply content is not text")
        return text

    def yes_no_logit(self, images: list[np.ndarray], prompt: str) -> float | None:
        """From the first token's top log-probs; None when the server returns none (or neither answer)."""
        payload = self._post({"model": self.model, "messages": chat_messages(images, prompt), "max_tokens": 1,
                              "temperature": 0.0, "logprobs": True, "top_logprobs": self.top_logprobs})
        try:
            first = payload["choices"][0]["logprobs"]["content"][0]
            top = [(t["token"], float(t["logprob"])) for t in first.get("top_logprobs") or [first]]
        except (KeyError, IndexError, TypeError, ValueError):
            return None
        return reward_from_top_logprobs(top)

    def yes_no_logits(self, requests: list[tuple[list[np.ndarray], str]]) -> list[float | None]:
        with ThreadPoolExecutor(self.concurrency) as pool:  # the semaphore caps requests in flight
            return list(pool.map(lambda r: self.yes_no_logit(*r), requests))
