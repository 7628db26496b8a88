"""Performance measurement, in one place: each command times two paths of the same work in one
run and reports their ratio (the simulator against its bare render, the VLM API against the
bare model, the loop's phases against its wall time, the paper's scale on a GPU). What a family
times is its own (``vlm/<family>/perf.py``); the timing is here."""
