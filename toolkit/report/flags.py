"""Plain-language findings: the sentences a person would otherwise have to dig out of the table.

Each finding compares like with like (same target, format and precision unless the sentence
says otherwise) and calls a latency different only when the 95% CIs on p50 do not overlap.
"""
from __future__ import annotations

import re
from collections import defaultdict

from toolkit.passes.steps import control_variant, is_sparsifying
from toolkit.raw_input import raw_input_findings
from toolkit.report.fallback import fallback_findings
from toolkit.records import as_records
from toolkit.report.sanity import sanity_findings
from toolkit.selection import KB, artifact_name, compare_p50, estimated, format_ms, measured_off_device, p50
from toolkit.task import is_regression, loss, relative_increase

MIN_EFFECT = 0.05  # smallest relative latency difference reported as faster/slower
_DROP_WARNING_PP = 2.0
_MAE_WARNING_PCT = 10.0


def findings(records: list[dict], run_info: dict) -> list[str]:
    """All findings for a run, most decision-relevant first.

    Speed findings (sparsity, precision) are made only for targets timed on the device itself:
    a host-CPU stand-in says nothing about whether a GPU or Edge TPU gets faster.
    """
    from toolkit.report.mcu_findings import mcu_findings

    records = as_records(records)
    return (sanity_findings(records, run_info)
            + _not_timed(records)
            + _measured_elsewhere(records)
            + mcu_findings(records)
            + _compatibility(records)
            + _sparsity(records)
            + _precision_speed(records)
            + _student_sizes(records)
            + _distillation(records)
            + _large_drops(records)
            + fallback_findings(records, run_info)
            + _int8_kernels(records, run_info)
            + list(run_info.get("data_warnings") or [])
            + raw_input_findings(records)
            + _skipped(run_info))


def _ms(record: dict) -> str:
    return format_ms(p50(record))


def _baseline_variant(records: list[dict]) -> str | None:
    """The variant produced by no pass (empty chain); "baseline" by name as a fallback."""
    for record in records:
        if "chain" in record and not record["chain"]:
            return record["variant"]
    names = {record["variant"] for record in records}
    return "baseline" if "baseline" in names else None


def _index(records: list[dict]) -> dict[tuple, dict]:
    return {(r["variant"], r["target"], r["format"], r["precision"]): r for r in records}


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _speed_verdict(a: dict, b: dict) -> int:
    """compare_p50, but a finding also needs a difference of at least MIN_EFFECT: artifacts in
    a run are timed minutes apart, and a few percent of drift between them is not a finding."""
    verdict = compare_p50(a, b)
    if verdict and abs(a["p50"] - b["p50"]) < MIN_EFFECT * max(a["p50"], b["p50"]):
        return 0
    return verdict


def _not_timed(records: list[dict]) -> list[str]:
    """Artifacts whose measurement failed (a device lost mid-run, a delegate that does not load)."""
    reasons: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.get("latency_error"):
            reasons[f"{record['target']}: {record['latency_error']}"].append(artifact_name(record))
    return [f"{len(names)} artifact(s) not timed, {why} ({_join(sorted(names))}); the same command measures them "
            "once the cause is fixed" for why, names in reasons.items()]


def _measured_elsewhere(records: list[dict]) -> list[str]:
    """Targets whose latency is a host-CPU stand-in for the device."""
    labels: dict[str, str] = {}
    for record in records:
        if measured_off_device(record) and not estimated(record):
            labels.setdefault(record["target"], record["latency_measured_on"])
    proxies = defaultdict(list)
    for target, label in labels.items():
        place = re.split(r"[\s,;:—–-]*\bnot\b", label)[0].strip()
        proxies[place or label].append(target)
    return [f"latency for {_join(sorted(targets))} was measured on the {place}, not on the "
            f"device: use it to rank artifacts, not as the device's speed"
            for place, targets in proxies.items()]


def _compatibility(records: list[dict]) -> list[str]:
    """What will not be accelerated: whole-model blockers first, then per-artifact fallbacks.

    Reads the check's report fields: compatible, summary, blockers, ops_total,
    ops_on_accelerator, accelerator, fallback.
    """
    blocked: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    fallbacks: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    others = []
    for record in records:
        report, name, target = (record.get("compatibility") or {}, artifact_name(record),
                                record["target"])
        total, on_accelerator = report.get("ops_total"), report.get("ops_on_accelerator")
        if report.get("blockers"):
            accelerator = report.get("accelerator") or "accelerator"
            blocked[(target, accelerator, report["blockers"][0])].append(name)
        elif total and on_accelerator is not None and on_accelerator < total:
            fallbacks[(target, report.get("fallback") or "CPU")].append(
                (f"{total - on_accelerator} of {total}", name))
        elif report.get("compatible") is False:
            others.append(f"{name} is not compatible with {target}: {report.get('summary', '')}")
    sentences = [f"{_count(names)} {_blocked_verb(reason, accelerator)} on {target}: {reason} ({_first_few(names)})"
                 for (target, accelerator, reason), names in blocked.items()]
    for (target, fallback), items in fallbacks.items():
        if len(items) == 1:
            (count, name), = items
            sentences.append(f"{count} ops fall back to the {fallback} on {target} for {name}")
        else:
            shown = _first_few([f"{name} ({count})" for count, name in items])
            sentences.append(f"ops fall back to the {fallback} on {target} in {_count(items)}: "
                             f"{shown}")
    return sentences + others


def _blocked_verb(reason: str, accelerator: str) -> str:
    """A board the file does not fit, or a firmware without its kernel, stops it running at all;
    any other blocker keeps it off the accelerator."""
    if reason.startswith(("does not fit", "TensorFlow Lite Micro has no kernel")):
        return "cannot run"
    return f"cannot use the {accelerator}"


def _count(names: list | tuple) -> str:
    return f"{len(names)} artifact{'s' if len(names) > 1 else ''}"


def _first_few(names: list[str], shown: int = 3) -> str:
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def _sparsity(records: list[dict]) -> list[str]:
    """Pruning/clustering shrink the compressed file; say whether they also made it faster."""
    base = _baseline_variant(records)
    if base is None:
        return []
    index = _index(records)
    sentences = []
    for record in records:
        chain = record.get("chain") or []
        if (record["variant"] == base or measured_off_device(record)
                or not any(is_sparsifying(step) for step in chain)):
            continue
        reference = index.get((base, record["target"], record["format"], record["precision"]))
        if reference is None or not _is_reported_precision(record, index):
            continue
        ratio = reference["gzip_bytes"] / record["gzip_bytes"]
        size = (f"{ratio:.1f}× smaller (gzip)" if ratio >= 1.1 else
                f"no smaller (gzip {record['gzip_bytes'] / KB:.1f} vs "
                f"{reference['gzip_bytes'] / KB:.1f} KB)")
        speed = _speed_words(record, reference)
        joiner = "and" if (ratio >= 1.1) == (speed.startswith("faster")) else "but"
        sentences.append(f"{record['variant']} made the {record['target']} {record['precision']} "
                         f"file {size} {joiner} {speed}")
    return sentences


def _is_reported_precision(record: dict, index: dict[tuple, dict]) -> bool:
    """Report one precision per variant and target: int8 if exported, else the first one."""
    key = (record["variant"], record["target"], record["format"])
    precisions = [k[3] for k in index if k[:3] == key]
    preferred = "int8" if "int8" in precisions else precisions[0]
    return record["precision"] == preferred


def _speed_words(record: dict, reference: dict) -> str:
    if p50(record) is None or p50(reference) is None:
        return "its speed was not measured"
    numbers = f"(p50 {_ms(record)} vs {_ms(reference)} ms)"
    verdict = _speed_verdict(record["latency_ms"], reference["latency_ms"])
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
        if record["variant"] != base or record["precision"] == "fp32" or measured_off_device(record):
            continue
        fp32 = index.get((base, record["target"], record["format"], "fp32"))
        if fp32 is None or p50(record) is None or p50(fp32) is None:
            continue
        fmt, quantized = record["format"], f"{record['format']} {record['precision']}"
        numbers = f"(p50 {_ms(record)} vs {_ms(fp32)} ms)"
        verdict = _speed_verdict(record["latency_ms"], fp32["latency_ms"])
        if verdict > 0:
            where = f"on {record['device_host']}" if record.get("device_host") else "on this machine"
            finding = f"{quantized} is slower than {fmt} fp32 {where} {numbers}"
        elif verdict < 0:
            ratio = p50(fp32) / p50(record)
            finding = f"{quantized} is {ratio:.1f}× faster than {fmt} fp32 {numbers}"
        else:
            finding = f"{quantized} shows no measurable difference from {fmt} fp32 {numbers}"
        sentences.append(f"{record['target']}: {finding}")
    return sentences


def _student_sizes(records: list[dict]) -> list[str]:
    """Each distilled student's parameters (and TFLite MACs where counted) against the teacher's;
    a student the user named that is larger than the teacher is called out, not a compression."""
    base = _baseline_variant(records)
    teacher = next((r for r in records if r["variant"] == base), None)
    if teacher is None or not teacher.get("params"):
        return []
    macs = {(r["variant"], r["target"]): r["macs"] for r in records if r.get("macs") and r["precision"] == "fp32"}
    sentences = []
    for variant in sorted({r["variant"] for r in records if control_variant(r["variant"])}):
        student = next(r for r in records if r["variant"] == variant)
        ratio = student["params"] / teacher["params"]
        text = (f"{variant}'s student has {student['params']:,} parameters, {ratio:.2f}× the teacher's "
                f"{teacher['params']:,}")
        target = next((t for v, t in macs if v == variant and (base, t) in macs), None)
        if target is not None:
            mine, theirs = macs[(variant, target)], macs[(base, target)]
            text += f", and {mine / 1e6:.3g} M MACs vs {theirs / 1e6:.3g} M ({mine / theirs:.2f}×)"
        if ratio >= 1:
            text += (f": it is larger than the teacher by {ratio:.1f}×, so it compresses nothing; "
                     "size it with distill:params=0.25 or a smaller width")
        sentences.append(text)
    return sentences


def _distillation(records: list[dict]) -> list[str]:
    """distill<X> vs scratch<X>: what the teacher bought over training the student alone."""
    by_variant = defaultdict(list)
    for record in records:
        by_variant[record["variant"]].append(record)
    index = _index(records)
    sentences = []
    for variant in sorted(by_variant):
        scratch = control_variant(variant)
        if scratch is None:
            continue
        pairs = []
        for record in by_variant[variant]:
            partner = index.get((scratch, record["target"], record["format"], record["precision"]))
            if partner is not None:
                pairs.append((record, partner))
        fp32_pairs = [pair for pair in pairs if pair[0]["precision"] == "fp32"] or pairs
        if not fp32_pairs:
            continue
        sentences.append(f"distillation {_distillation_words(fp32_pairs)} the same student trained from scratch "
                         f"({variant} {_figure(fp32_pairs[0][0])} vs {scratch} {_figure(fp32_pairs[0][1])}, "
                         f"{fp32_pairs[0][0]['precision']})")
    return sentences


def _figure(record: dict) -> str:
    return f"MAE {record['mae']:.4g}" if is_regression(record) else f"{record['accuracy'] * 100:.2f}%"


def _distillation_words(pairs: list[tuple[dict, dict]]) -> str:
    """'bought +1.2 pp over', or for a regression 'lowered the MAE by 8.0% against'."""
    if is_regression(pairs[0][0]):
        change = sum(relative_increase(s["mae"], d["mae"]) for d, s in pairs) / len(pairs)
        return f"lowered the MAE by {-change:.1f}% against" if change <= 0 else f"raised the MAE by {change:.1f}% against"
    gain = sum(d["accuracy"] - s["accuracy"] for d, s in pairs) / len(pairs) * 100
    return f"bought {gain:+.1f} pp over" if gain >= 0 else f"lost {-gain:.1f} pp against"


def _large_drops(records: list[dict]) -> list[str]:
    """Variants that lose noticeable accuracy (a regression: raise its MAE noticeably), with the
    range over their artifacts."""
    regression = any(is_regression(record) for record in records)
    limit, unit = (_MAE_WARNING_PCT, "%") if regression else (_DROP_WARNING_PP, " pp")
    drops = defaultdict(list)
    for record in records:
        if loss(record) > limit:
            drops[record["variant"]].append(loss(record))
    if not drops:
        return []
    worst_first = sorted(drops, key=lambda variant: -max(drops[variant]))
    parts = [f"{variant} ({'+' if regression else ''}{_range(drops[variant])}{unit} in {len(drops[variant])} artifact"
             f"{'s' if len(drops[variant]) > 1 else ''})" for variant in worst_first]
    plural = len(parts) > 1
    if regression:
        return [f"{_join(parts)} raise{'' if plural else 's'} the MAE by more than {limit:g}% against the full model"]
    return [f"{_join(parts)} lose{'' if plural else 's'} more than {limit:g} pp accuracy against the full model"]


def _range(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:.1f}" if f"{low:.1f}" == f"{high:.1f}" else f"{low:.1f}–{high:.1f}"


def _int8_kernels(records: list[dict], run_info: dict) -> list[str]:
    """int8 ONNX files whose fused kernels change predictions on this CPU, with cause and fix."""
    from toolkit.checks.int8_kernels import MIN_TOP1
    from toolkit.cpu_features import describe

    cpu = run_info.get("cpu") or {}
    sentences = []
    for record in records:
        check = record.get("int8_kernels")
        if not check or is_regression(record) or check["top1"] >= MIN_TOP1:  # top-1 means nothing for a regression
            continue
        if check.get("max_diff_steps") is not None and check["max_diff_steps"] <= 1:
            continue  # one output step at most: near-tied scores whose rounding tie broke the other way
        lead = (f"{record['target']}/{artifact_name(record)}: ONNX Runtime's fused int8 kernels agree with the file's own exact "
                f"integer math on only {check['top1'] * 100:.1f}% of {check['samples']} test predictions "
                f"on this CPU ({describe(cpu) if cpu else 'CPU not recorded'})")
        if cpu.get("u8s8_saturation"):
            sentences.append(
                f"{lead}: without VNNI its u8×s8 kernels add products in 16 bits, which saturate when weights "
                "use all 8 bits; set reduce_range = true in the target profile (7-bit weights), or set ORT's "
                "session option session.x64quantprecision = 1 where it runs; CPUs with VNNI or ARM dot product "
                "are not affected")
        else:
            sentences.append(f"{lead}; this CPU has int8 dot-product instructions, so this is not the known "
                             "AVX2 saturation: please report it with the file")
    return sentences


def _skipped(run_info: dict) -> list[str]:
    return [f"{item.get('variant', '?')} was skipped: {item.get('reason', 'no reason given')}"
            for item in run_info.get("skipped") or []]
