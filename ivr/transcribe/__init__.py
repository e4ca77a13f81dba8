"""Offline batch transcription: folders of recordings to transcripts (`ivr transcribe`).

Modules, one job each: `inputs` (find the files and their output names), `engine` (plan a file
into VAD pieces, decode a piece in a worker; the model loaded once per process), `formats` (JSONL,
SRT, VTT, TXT), `store` (atomic writes and done markers for resuming), `progress` (progress lines
and the summary), `executors` (in-process, Dask local cluster or an existing Dask scheduler),
`runner` (ties them together), `bench` (throughput against plain sequential faster-whisper), `cli` (the subcommands).
"""
