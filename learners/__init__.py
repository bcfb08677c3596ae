"""The learner group (Ray Train; DDP or DeepSpeed), its per-worker loop and the weight store."""
