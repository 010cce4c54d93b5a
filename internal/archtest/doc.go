// Package archtest holds the architecture test: it reads the package table of
// docs/ARCHITECTURE.md and fails when a package imports what its row does not
// allow, when a package has no row, or when a row names what no longer exists.
// It has no code of its own; see arch_test.go.
package archtest
