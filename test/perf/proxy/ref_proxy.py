# A minimal re-creation of the reference Quart + aiohttp PD proxy (pd_proxy.py + rate_limiter.py +
# request_queue.py from the guide), written for the comparison in proxy.bench.ts only. Its known defects are
# kept on purpose: the limiter is charged for both stages, the queue does not bound concurrency, upstream
# errors come back as 200, the response is not typed as SSE, "Bearer None" is sent without a key,
# max_completion_tokens is not forced to 1, and a client disconnect does not stop the engines.
import argparse
import asyncio
import os
import time

import aiohttp
from quart import Quart, make_response, request

AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=6 * 60 * 60)


class RateLimiter:
    def __init__(self, rate_limit):
        self.rate_limit = rate_limit
        self.num_available_tokens = rate_limit
        self.last_refill = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self):
        async with self.lock:
            while True:
                now = time.monotonic()
                elapsed = now - self.last_refill
                self.num_available_tokens = min(self.rate_limit, self.num_available_tokens + elapsed * self.rate_limit)
                self.last_refill = now
                if self.num_available_tokens >= 1:
                    self.num_available_tokens -= 1
                    return True
                await asyncio.sleep((1 - self.num_available_tokens) / self.rate_limit)


class RequestQueue:
    def __init__(self, max_concurrent, max_queue_size):
        self.max_concurrent = max_concurrent
        self.queue = asyncio.Queue(maxsize=max_queue_size)
        self.semaphore = asyncio.Semaphore(max_concurrent)

    async def enqueue(self, task):
        try:
            self.queue.put_nowait(task)
            return True
        except asyncio.QueueFull:
            return False

    async def process(self):
        while True:
            task = await self.queue.get()
            async with self.semaphore:
                asyncio.create_task(task)  # the semaphore is released before the task runs: no real bound
            self.queue.task_done()


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--prefill-url", default="http://localhost:8100/v1/completions")
    p.add_argument("--decode-url", default="http://localhost:8200/v1/completions")
    p.add_argument("--rate-limit", type=int, default=40)
    p.add_argument("--max-concurrent", type=int, default=100)
    p.add_argument("--queue-size", type=int, default=500)
    p.add_argument("--timeout", type=float, default=300)
    return p.parse_args()


args = parse_args()
app = Quart(__name__)
rate_limiter = RateLimiter(args.rate_limit)
request_queue = RequestQueue(args.max_concurrent, args.queue_size)


def base(url):
    return url.split("/v1/")[0]


async def forward_request(url, data):
    headers = {"Authorization": f"Bearer {os.environ.get('OPENAI_API_KEY')}"}
    await rate_limiter.acquire()  # charged for every stage
    async with aiohttp.ClientSession(timeout=AIOHTTP_TIMEOUT) as session:
        async with session.post(url=url, json=data, headers=headers) as response:
            if response.status == 200:
                async for chunk_bytes in response.content.iter_chunked(1024):
                    yield chunk_bytes
            else:
                yield (await response.read())


async def handle(path):
    original = await request.get_json()
    prefill = dict(original)
    prefill["max_tokens"] = 1
    async for _ in forward_request(base(args.prefill_url) + path, prefill):
        continue
    generator = forward_request(base(args.decode_url) + path, original)
    response = await make_response(generator)
    response.timeout = None
    return response


@app.route("/v1/completions", methods=["POST"])
async def completions():
    return await handle("/v1/completions")


@app.route("/v1/chat/completions", methods=["POST"])
async def chat_completions():
    return await handle("/v1/chat/completions")


@app.before_serving
async def start_queue():
    asyncio.get_event_loop().create_task(request_queue.process())


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=args.port)
