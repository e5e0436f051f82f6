"""The ground sensor network: association, location and station health."""
