"""The review classifier as a package of its own: what the trainer, the predictor and their engines share.

- `features`: word n-gram TF-IDF and the dense length features, fitted as plain data.
- `model`: the stacked model (linear heads over TF-IDF, stacked into XGBoost), its fit and predict.
- `artifacts`: the plain-data file format of a model version and its loader, which refuses the rest.
- `prediction`: the prediction core, an etl/ table in, class probabilities and labels out (vectorised).
- `versions`: the `vMAJOR.MINOR` version number of a model.

The etl/ columns the model reads are `shared.etl_schema`'s. Nothing here imports boto3 or
Powertools, so a SageMaker training job or an AWS Batch job can import it as the Lambdas do.
"""
