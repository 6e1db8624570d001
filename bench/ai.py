"""The AI layer's own overhead: the same calls through AIRouter and straight through the SDK.

    . .venv/bin/activate
    python bench/ai.py              # 200 calls per provider and path, ≈ 10 s on 2 cores
    python bench/ai.py --calls 1000

For each provider (OpenAI, Gemini) a local stub server (tests/support/ai_stubs.py) answers instantly with a
valid JSON answer. The bench times `--calls` sequential calls made directly with the SDK (one request, the
response parsed) and the same number through `AIRouter.run` (prompt rendering with escaping, the SDK call,
schema validation, cost, metrics, the run log), after `--warmup` calls of each. The difference of the medians
is the layer's overhead per call; the stub's own time is in both. Logs go to a level above INFO so the
terminal is not the measure.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("CRM_ENV", "test")
os.environ.setdefault("LOG_LEVEL", "WARNING")
# Priced models, so the cost path is part of what is measured.
os.environ.setdefault("AI_PRICES", '{"openai/gpt-bench": {"input": "0.15", "output": "0.60"}, '
                                   '"gemini/gemini-bench": {"input": "0.10", "output": "0.40"}}')

from google import genai  # noqa: E402
from google.genai import types as genai_types  # noqa: E402
from openai import OpenAI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from layers.ai.providers.gemini_provider import GeminiProvider  # noqa: E402
from layers.ai.providers.openai_provider import OpenAIProvider  # noqa: E402
from layers.ai.router import AIRouter  # noqa: E402
from layers.ai.types import AIRequest, ModelChoice, ProviderPolicy, RecordInput  # noqa: E402
from tests.support.ai_stubs import gemini_stub, openai_stub  # noqa: E402

ANSWER = '{"headline": "Ada is a warm lead", "citations": ["act_1", "act_2"]}'


class Summary(BaseModel):
    headline: str
    citations: list[str]


REQUEST = AIRequest(
    task="summary", prompt_version="summary/1", system_prompt="Summarise the contact.", output_schema=Summary,
    records=[RecordInput("contacts", "con_1", {"first_name": "Ada", "last_name": "Lovelace", "city": "Berlin"},
                         items=[{"id": f"act_{i}", "kind": "note", "body": "Called, <b>keen</b> on a demo."}
                                for i in range(20)])],
)


def _timed(call: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def _direct_openai(base_url: str) -> Callable[[], object]:
    client = OpenAI(api_key="sk-bench", base_url=base_url, max_retries=0)
    return lambda: client.chat.completions.create(
        model="gpt-bench", messages=[{"role": "user", "content": "hi"}], timeout=5).choices[0].message.content


def _direct_gemini(base_url: str) -> Callable[[], object]:
    client = genai.Client(api_key="gm-bench", http_options=genai_types.HttpOptions(base_url=base_url))
    return lambda: client.models.generate_content(model="gemini-bench", contents="hi").text


def _measure(name: str, direct: Callable[[], object], routed: Callable[[], object], calls: int, warmup: int) -> None:
    _timed(direct, warmup)
    _timed(routed, warmup)
    direct_ms = statistics.median(_timed(direct, calls))
    routed_ms = statistics.median(_timed(routed, calls))
    print(f"{name:8} direct p50 {direct_ms:7.2f} ms   router p50 {routed_ms:7.2f} ms   "
          f"overhead {routed_ms - direct_ms:6.2f} ms/call")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    with openai_stub(answer=ANSWER) as openai_api, gemini_stub(answer=ANSWER) as gemini_api:
        router = AIRouter({"openai": OpenAIProvider(api_key="sk-bench", base_url=openai_api.base_url),
                           "gemini": GeminiProvider(api_key="gm-bench", base_url=gemini_api.base_url)})
        for name, direct, model in (("openai", _direct_openai(openai_api.base_url), "gpt-bench"),
                                    ("gemini", _direct_gemini(gemini_api.base_url), "gemini-bench")):
            policy = ProviderPolicy([ModelChoice(name, model)], timeout_seconds=5)  # type: ignore[arg-type]
            _measure(name, direct, lambda policy=policy: router.run(REQUEST, policy), args.calls, args.warmup)


if __name__ == "__main__":
    main()
