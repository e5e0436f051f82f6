"""The lab: scenario generators, scoring and harnesses shared by the test suite and the
benchmarks (crash recovery, load, fuzzing, hostile inputs, a throwaway PostGIS). It is not
part of the installed package; tests and benchmarks put ``benchmarks/`` on the path."""
