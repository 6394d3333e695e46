"""Course subscriptions: rules that span courses and students, kept with decision models."""
