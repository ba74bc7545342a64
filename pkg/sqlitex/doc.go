// Package sqlitex opens embedded SQLite databases (modernc.org/sqlite, pure
// Go, no cgo) with settings suited to a small server, and applies versioned SQL
// migrations with the same contract as package postgres.
package sqlitex
