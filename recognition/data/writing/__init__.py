"""Writing datasets: image lists, encoding and packing into `.rec`/`.idx` (the one writer),
layout conversion, face alignment of photo folders, and the log of inputs left out."""
