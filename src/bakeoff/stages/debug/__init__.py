"""The debug stage: planted faults against each framework's own debugging tools, and pdb/print probes."""
