"""Validating a 10,000-row Alpaca file with token counting: goal under 10 s (tokenizer loading apart).

Generates a reproducible JSONL of varied English and Chinese rows of realistic lengths (some with an
`input`, a few long enough to be cut at max_length, some exact and near duplicates), then times
`engine.data.reading.load_report` and `engine.data.checks.check_dataset` with the bundled model's tokenizer.
"""
from __future__ import annotations

import json
import random
import tempfile
import time
from pathlib import Path

ROWS = 10_000
GOAL_S = 10.0
MAX_LENGTH = 512
EPOCHS = 3
SEED = 1234

EN_WORDS = (
    "the a an of to and in is for on with that this it as be are by from or at your you can we our not "
    "order ship shipping delivery parcel refund return account password email phone price discount code "
    "product size colour color warranty store open weekend week day hour minute customer service team "
    "please thanks help need want would could should will when where why how what which who explain "
    "write summarise summarize translate list describe compare example python function data table sentence "
    "story poem letter recipe cake bread water energy solar climate city river mountain history science "
    "student teacher school learn study book chapter idea plan budget meeting project report market growth "
    "simple quick short long best good better new old first last next small large important common easy"
).split()
ZH_PHRASES = (
    "您好 感谢 联系 我们 订单 发货 快递 物流 退款 退货 账户 密码 邮箱 手机 价格 优惠 折扣 产品 尺码 颜色 "
    "保修 门店 营业 周末 工作日 小时 客服 团队 请问 帮助 需要 可以 应该 什么 为什么 怎么 如何 哪里 解释 "
    "写一段 总结 翻译 列出 描述 比较 例子 函数 数据 表格 句子 故事 诗歌 信件 食谱 蛋糕 面包 水 能源 "
    "太阳能 气候 城市 河流 山 历史 科学 学生 老师 学校 学习 书 章节 想法 计划 预算 会议 项目 报告 市场 "
    "增长 简单 快速 重要 常见 容易 今天 明天 已经 还是 但是 因为 所以 如果 就 会 在 的 了 和 是 也 都"
).split()
EN_PUNCT = (".", ".", ".", ",", "?", "!")
ZH_PUNCT = ("。", "。", "，", "，", "？", "！")


def _lognormal_int(rng: random.Random, median: float, sigma: float, low: int, high: int) -> int:
    return max(low, min(high, int(rng.lognormvariate(0, sigma) * median)))


def _english(rng: random.Random, words: int) -> str:
    out, sentence = [], []
    for _ in range(words):
        sentence.append(rng.choice(EN_WORDS))
        if len(sentence) >= rng.randint(6, 18):
            out.append(" ".join(sentence).capitalize() + rng.choice(EN_PUNCT))
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def _chinese(rng: random.Random, chars: int) -> str:
    out, size = [], 0
    while size < chars:
        phrase = rng.choice(ZH_PHRASES)
        out.append(phrase)
        size += len(phrase)
        if rng.random() < 0.12:
            out.append(rng.choice(ZH_PUNCT))
    return "".join(out) + "。"


def make_row(rng: random.Random) -> dict[str, str]:
    if rng.random() < 0.6:
        instruction = _english(rng, _lognormal_int(rng, 12, 0.5, 3, 60))
        extra = _english(rng, _lognormal_int(rng, 30, 0.7, 5, 300)) if rng.random() < 0.35 else ""
        output = _english(rng, _lognormal_int(rng, 60, 0.9, 1, 900))
    else:
        instruction = _chinese(rng, _lognormal_int(rng, 20, 0.5, 4, 100))
        extra = _chinese(rng, _lognormal_int(rng, 50, 0.7, 8, 400)) if rng.random() < 0.35 else ""
        output = _chinese(rng, _lognormal_int(rng, 120, 0.9, 2, 1500))
    return {"instruction": instruction, "input": extra, "output": output}


def make_rows(count: int = ROWS, seed: int = SEED) -> list[dict[str, str]]:
    """`count` rows: ~2 % exact duplicates, ~1 % near duplicates, ~0.5 % conflicting answers."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    while len(rows) < count:
        roll = rng.random()
        if rows and roll < 0.02:
            rows.append(dict(rng.choice(rows)))
        elif rows and roll < 0.03:
            row = dict(rng.choice(rows))
            row["instruction"] = row["instruction"].upper().rstrip(".?!。？！") + " "
            rows.append(row)
        elif rows and roll < 0.035:
            row = dict(rng.choice(rows))
            row["output"] = make_row(rng)["output"]
            rows.append(row)
        else:
            rows.append(make_row(rng))
    return rows


def write_jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def run(rows: int = ROWS) -> dict[str, float]:
    from engine.data import checks, reading
    from engine.models import loader

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpaca_10k.jsonl"
        write_jsonl(path, make_rows(rows))
        size_mb = path.stat().st_size / 1e6

        start = time.perf_counter()
        tokenizer = loader.load_tokenizer(loader.resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct"))
        tokenizer_s = time.perf_counter() - start

        start = time.perf_counter()
        report = reading.load_report(path)
        read_s = time.perf_counter() - start
        start = time.perf_counter()
        issues, summary = checks.check_dataset(report, tokenizer, max_length=MAX_LENGTH, num_train_epochs=EPOCHS)
        checks_s = time.perf_counter() - start

    counts: dict[str, int] = {}
    for issue in report.issues + issues:
        counts[issue.code] = counts.get(issue.code, 0) + 1
    total = read_s + checks_s
    return {"rows": len(report.examples), "file_mb": size_mb, "tokenizer_load_s": tokenizer_s,
            "read_and_row_checks_s": read_s, "dataset_checks_s": checks_s, "total_s": total,
            "goal_ratio": total / GOAL_S, "tokens": sum(summary.token_lengths),
            "truncated_rows": summary.truncated_rows, "languages": summary.languages, "issues": counts}


def main() -> None:
    r = run()
    print(f"rows:                       {r['rows']} ({r['file_mb']:.1f} MB, {r['tokens']:,} tokens, "
          f"languages {r['languages']})")
    print(f"tokenizer load (apart):     {r['tokenizer_load_s']:.2f} s")
    print(f"read + row checks:          {r['read_and_row_checks_s']:.2f} s")
    print(f"dataset checks + tokenize:  {r['dataset_checks_s']:.2f} s")
    print(f"total:                      {r['total_s']:.2f} s  = {r['goal_ratio']:.2f} x the {GOAL_S:.0f} s goal")
    print(f"issues:                     {r['issues']} (truncated rows at {MAX_LENGTH}: {r['truncated_rows']})")


if __name__ == "__main__":
    main()
