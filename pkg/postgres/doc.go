// Package postgres opens traced pgx pools and applies versioned SQL
// migrations. It holds no business rules.
package postgres
