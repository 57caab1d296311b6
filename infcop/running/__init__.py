"""Running the science: the commands' steps, the results layout, checkpoints and atomic writes, locks,
fault injection, the warm start, the cluster requests and the progress lines."""
