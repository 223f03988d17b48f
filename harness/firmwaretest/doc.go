// Package firmwaretest tests the C firmware (../../firmware) from Go: it
// builds the host programs with make, runs the shared operator vectors
// through the C kernels, and runs plan images of every scheduler through
// the C runtime on the host port, with brown-outs injected at every task
// boundary and at random NVM words, comparing every output byte for byte
// with the reference executor (harness/refexec). It has tests only.
package firmwaretest
