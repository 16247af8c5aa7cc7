"""Reading: `.rec` datasets (either layout), training's readers and their decoding workers,
`.bin` pair sets (restricted unpickling), contact sheets, forkserver worker pools."""
