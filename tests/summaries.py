"""What two evaluation summaries of the same data share: everything but how long they took."""
import json


def without_timing(summary: dict) -> dict:
    """A copy of an ``eval run`` summary without its wall-clock fields, which differ run to run."""
    summary = json.loads(json.dumps(summary))
    summary.pop("timing")
    for info in summary["comparison_sets"].values():
        info.pop("seconds", None)
        info.pop("pairs_per_second", None)
    return summary
