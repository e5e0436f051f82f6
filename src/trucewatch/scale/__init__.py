"""Scale-out on Dask: reprocessing years of archive, partitioned by tile × block of days,
with results identical to the single-process path (reprocess.py)."""
