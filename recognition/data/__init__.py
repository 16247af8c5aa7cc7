"""Data: `.rec` datasets (plain MXNet and InsightFace layouts) and `.bin` pair sets, in three
subpackages by job: `reading`, `integrity` (checks) and `writing`."""
