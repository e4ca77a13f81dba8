"""The learning loop: labelled caller turns -> a retrained intent model -> versions an admin accepts -> ivr serve."""
