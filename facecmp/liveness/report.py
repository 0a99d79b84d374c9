"""Human-readable rendering of a :class:`LivenessResult` (the CLI's ``facecmp liveness IMAGE``)."""
from __future__ import annotations

from facecmp.liveness.checker import LivenessResult

# How a check's value and limit read (the CLI's lines, the notebook card of facecmp.display).
CHECK_UNITS = {"face_fraction": "", "face_inside_image": " px", "border_distance": " px", "face_width": " px",
               "interpupillary_distance": " px", "yaw": " deg", "pitch": " deg", "roll": " deg",
               "face_count": "", "liveness_score": ""}
LIMIT_SIDES = {"face_fraction": "<=", "face_inside_image": "<=", "border_distance": ">=", "face_width": ">=",
               "interpupillary_distance": ">=", "yaw": "|x| <=", "pitch": "|x| <=", "roll": "|x| <=",
               "face_count": "==", "liveness_score": ">="}


def format_liveness_report(result: LivenessResult) -> str:
    """A few lines: verdict and code, score, one line per check (value, limit, pass/FAIL), timing."""
    verdict = "LIVE" if result.live else f"NOT LIVE ({result.code})"
    score = "not computed (a requirement failed first)" if result.score is None else f"{result.score:.4f}"
    lines = [f"liveness: {verdict}", f"  {result.message}", f"  score: {score}"]
    for name, check in result.checks.items():
        mark = "ok  " if check["passed"] else "FAIL"
        unit = CHECK_UNITS.get(name, "")
        lines.append(f"  [{mark}] {name:<24} {check['value']:>10.4g}{unit}   "
                     f"(required {LIMIT_SIDES.get(name, 'vs')} {check['limit']:g}{unit})")
    if "total" in result.timings_ms:
        lines.append(f"  time: {result.timings_ms['total']:.1f} ms")
    return "\n".join(lines)
