"""Training pipeline: data discovery, patient-level splits, training and evaluation."""
