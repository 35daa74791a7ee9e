"""Run directories and what reads them: the record store, a finished run, the runs listing, the compare
judgement, and tracking exports (MLflow, TensorBoard)."""
