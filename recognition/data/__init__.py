"""Data: `.rec` datasets (plain MXNet and InsightFace layouts), `.bin` pair sets, synthetic faces."""
