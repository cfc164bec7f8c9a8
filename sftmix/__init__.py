"""sftmix: instruction tuning with the SFTMix recipe."""
