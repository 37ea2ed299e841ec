"""Plain-language findings: the sentences a person would otherwise have to dig out of the table.

Each finding compares like with like (same target, format and precision unless the sentence
says otherwise) and calls a latency different only when the 95% CIs on p50 do not overlap.
"""
from __future__ import annotations

import re
from collections import defaultdict

from toolkit.report.pareto import compare_p50
from toolkit.select import artifact_name, p50

_SPARSIFYING = ("prune", "cluster")  # passes whose gain is in gzip size, not in dense kernels
_DROP_WARNING_PP = 2.0


def findings(records: list[dict], run_info: dict) -> list[str]:
    """All findings for a run, most decision-relevant first."""
    return (_measured_elsewhere(records, run_info)
            + _compatibility(records)
            + _sparsity(records)
            + _precision_speed(records)
            + _distillation(records)
            + _large_drops(records)
            + _skipped(run_info))


def _ms(record: dict) -> str:
    return f"{p50(record):.3g}"


def _baseline_variant(records: list[dict]) -> str | None:
    """The variant produced by no pass (empty chain); "baseline" by name as a fallback."""
    for record in records:
        if record.get("chain") == []:
            return record["variant"]
    names = {record["variant"] for record in records}
    return "baseline" if "baseline" in names else None


def _index(records: list[dict]) -> dict[tuple, dict]:
    return {(r["variant"], r["target"], r["format"], r["precision"]): r for r in records}


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _measured_elsewhere(records: list[dict], run_info: dict) -> list[str]:
    """Targets whose latency label says it was not measured on the device itself."""
    labels: dict[str, str] = {}
    for record in records:
        labels.setdefault(record["target"], record.get("latency_measured_on") or "")
    proxies = defaultdict(list)
    for target, label in labels.items():
        if re.search(r"\bnot\b", label):
            proxies[re.split(r",?\s*\bnot\b", label)[0].strip() or label].append(target)
    return [f"latency for {_join(sorted(targets))} was measured on the {place}, not on the "
            f"device: use it to rank artifacts, not as the device's speed"
            for place, targets in proxies.items()]


def _compatibility(records: list[dict]) -> list[str]:
    """Artifacts that cannot run on their target, and partial CPU fallbacks."""
    blocked: dict[tuple[str, str], list[str]] = defaultdict(list)
    sentences = []
    for record in records:
        report = record.get("compatibility") or {}
        if report.get("compatible") is False:
            blocked[(record["target"], report.get("summary", "failed the check"))].append(
                artifact_name(record))
        on_cpu, total = report.get("ops_on_cpu"), report.get("ops_total")
        if on_cpu and total:
            sentences.append(f"{on_cpu} of {total} ops fall back to the CPU on {record['target']} "
                             f"for {artifact_name(record)}")
    for (target, summary), names in blocked.items():
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        count = f"{len(names)} artifact{'s' if len(names) > 1 else ''}"
        sentences.insert(0, f"{count} cannot run on {target}: {summary} ({shown})")
    return sentences


def _sparsity(records: list[dict]) -> list[str]:
    """Pruning/clustering shrink the compressed file; say whether they also made it faster."""
    base = _baseline_variant(records)
    if base is None:
        return []
    index = _index(records)
    sentences = []
    for record in records:
        chain = record.get("chain") or []
        if record["variant"] == base or not any(s.startswith(_SPARSIFYING) for s in chain):
            continue
        reference = index.get((base, record["target"], record["format"], record["precision"]))
        if reference is None or not _is_most_compressed(record, index):
            continue
        ratio = reference["gzip_bytes"] / record["gzip_bytes"]
        size = (f"{ratio:.1f}× smaller (gzip)" if ratio >= 1.1 else
                f"no smaller (gzip {record['gzip_bytes'] / 1024:.1f} vs "
                f"{reference['gzip_bytes'] / 1024:.1f} KB)")
        speed = _speed_words(record, reference)
        joiner = "and" if (ratio >= 1.1) == (speed.startswith("faster")) else "but"
        sentences.append(f"{record['variant']} made the {record['target']} {record['precision']} "
                         f"file {size} {joiner} {speed}")
    return sentences


def _is_most_compressed(record: dict, index: dict[tuple, dict]) -> bool:
    """Report one precision per variant and target: int8 if exported, else the first one."""
    key = (record["variant"], record["target"], record["format"])
    precisions = [k[3] for k in index if k[:3] == key]
    preferred = "int8" if "int8" in precisions else precisions[0]
    return record["precision"] == preferred


def _speed_words(record: dict, reference: dict) -> str:
    if p50(record) is None or p50(reference) is None:
        return "its speed was not measured"
    numbers = f"(p50 {_ms(record)} vs {_ms(reference)} ms)"
    verdict = compare_p50(record["latency_ms"], reference["latency_ms"])
    if verdict < 0:
        return f"faster {numbers}"
    if verdict > 0:
        return f"slower {numbers}"
    return f"not faster: no measurable difference {numbers}"


def _precision_speed(records: list[dict]) -> list[str]:
    """For the baseline variant, each reduced precision against fp32 on the same runtime."""
    base = _baseline_variant(records)
    index = _index(records)
    sentences = []
    for record in records:
        if record["variant"] != base or record["precision"] == "fp32":
            continue
        fp32 = index.get((base, record["target"], record["format"], "fp32"))
        if fp32 is None or p50(record) is None or p50(fp32) is None:
            continue
        fmt, where = record["format"], record["target"]
        numbers = f"(p50 {_ms(record)} vs {_ms(fp32)} ms)"
        verdict = compare_p50(record["latency_ms"], fp32["latency_ms"])
        if verdict > 0:
            sentences.append(f"{fmt} {record['precision']} is slower than {fmt} fp32 on this "
                             f"machine for {where} {numbers}")
        elif verdict < 0:
            sentences.append(f"{fmt} {record['precision']} is {p50(fp32) / p50(record):.1f}× "
                             f"faster than {fmt} fp32 for {where} {numbers}")
        else:
            sentences.append(f"{fmt} {record['precision']} shows no measurable difference from "
                             f"{fmt} fp32 for {where} {numbers}")
    return sentences


def _distillation(records: list[dict]) -> list[str]:
    """distill<X> vs scratch<X>: what the teacher bought over training the student alone."""
    by_variant = defaultdict(list)
    for record in records:
        by_variant[record["variant"]].append(record)
    index = _index(records)
    sentences = []
    for variant in sorted(by_variant):
        if not variant.startswith("distill"):
            continue
        scratch = "scratch" + variant[len("distill"):]
        pairs = []
        for record in by_variant[variant]:
            partner = index.get((scratch, record["target"], record["format"], record["precision"]))
            if partner is not None:
                pairs.append((record, partner))
        fp32_pairs = [pair for pair in pairs if pair[0]["precision"] == "fp32"] or pairs
        if not fp32_pairs:
            continue
        gain = sum(d["accuracy"] - s["accuracy"] for d, s in fp32_pairs) / len(fp32_pairs) * 100
        distilled, alone = fp32_pairs[0]
        detail = (f"({distilled['precision']}: {distilled['accuracy'] * 100:.2f}% vs "
                  f"{alone['accuracy'] * 100:.2f}%)")
        if gain >= 0:
            sentences.append(f"distillation bought {gain:+.1f} pp over the same student trained "
                             f"from scratch ({variant} vs {scratch}) {detail}")
        else:
            sentences.append(f"distillation lost {-gain:.1f} pp against the same student trained "
                             f"from scratch ({variant} vs {scratch}) {detail}")
    return sentences


def _large_drops(records: list[dict]) -> list[str]:
    lossy = sorted((r for r in records if r["accuracy_drop_pp"] > _DROP_WARNING_PP),
                   key=lambda r: -r["accuracy_drop_pp"])
    if not lossy:
        return []
    shown = ", ".join(f"{artifact_name(r)} on {r['target']} ({r['accuracy_drop_pp']:.1f} pp)"
                      for r in lossy[:4])
    more = f" and {len(lossy) - 4} more" if len(lossy) > 4 else ""
    return [f"{len(lossy)} artifact{'s' if len(lossy) > 1 else ''} lose more than "
            f"{_DROP_WARNING_PP:g} pp accuracy against the full model: {shown}{more}"]


def _skipped(run_info: dict) -> list[str]:
    return [f"{item.get('variant', '?')} was skipped: {item.get('reason', 'no reason given')}"
            for item in run_info.get("skipped") or []]
