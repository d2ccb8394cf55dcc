"""What the tests and the benchmarks both drive the engine with: a scripted AMI server, an
engine without Asterisk, a stack's command line on a copy of config/, free loopback ports."""
