"""Data: `.rec` datasets (plain MXNet and InsightFace layouts; read, checked, packed and written
by one writer), `.bin` pair sets (restricted unpickling), synthetic faces (identity, nuisance
presets, rendering)."""
