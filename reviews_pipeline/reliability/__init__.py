"""Evidence that the pipeline can be trusted with data: real files end to end, faults injected, nothing lost.

Every scenario runs the whole local runtime (the emulator over HTTP, the stack built from the
templates, one worker process per service) on real review files, injects what it is about (a
crashed worker, duplicate deliveries, refused events, storage errors, a poison message, an archive
replay, a burst of 200 mixed files, hostile inputs, a failing SageMaker training job, a corrupt
corpus file, repeated and lost SageMaker state changes, a finisher killed mid-promotion) and then
checks, per file, that the ledger, the bucket and the run summary agree and that every row is
accounted for; where a model is trained, also that the registry's versions are consecutive, each
promoted at most once, none left running. `python -m reviews_pipeline.reliability` (`make
reliability`) runs them all and prints the report; the e2e tests run each one and assert on its evidence.
"""
