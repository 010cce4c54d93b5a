package store

import (
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
)

// OpenReadOnly opens an existing database for reading only: it never creates
// the file, runs no migration and takes no write lock, so `ccrelay stats` and
// shell completion can read it while `ccrelay serve` writes (WAL lets readers
// and the writer proceed together). A missing file is fs.ErrNotExist.
func OpenReadOnly(path string) (*DB, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	// mode=ro in a URI filename; the path is escaped so '?' or '#' in it
	// cannot be read as URI syntax.
	u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: path}).EscapedPath()}
	dsn := u.String() + "?mode=ro&_busy_timeout=5000"
	sdb, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	sdb.SetMaxOpenConns(2)
	if err := sdb.Ping(); err != nil {
		sdb.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	db := &DB{path: path}
	db.sqlp.Store(sdb)
	return db, nil
}

// OpenReadOnlyMany opens several relays' databases as one, for cluster-wide
// statistics: the first is opened read-only and the others are attached
// read-only; usage queries then sum over every database, so totals are
// exact across relays.
func OpenReadOnlyMany(paths []string) (*DB, error) {
	if len(paths) == 0 {
		return nil, errors.New("no database given")
	}
	db, err := OpenReadOnly(paths[0])
	if err != nil || len(paths) == 1 {
		return db, err
	}
	// ATTACH is per connection: keep to one.
	db.conn().SetMaxOpenConns(1)
	db.schemas = []string{"main"}
	for i, p := range paths[1:] {
		if _, err := os.Stat(p); err != nil {
			db.Close()
			// Not fs.ErrNotExist: one missing file of several is an error,
			// not "nothing recorded yet".
			return nil, fmt.Errorf("open database %s: %v", p, err)
		}
		u := url.URL{Scheme: "file", Opaque: (&url.URL{Path: p}).EscapedPath(), RawQuery: "mode=ro"}
		alias := fmt.Sprintf("db%d", i+1)
		if _, err := db.conn().Exec(`ATTACH DATABASE ? AS `+alias, u.String()); err != nil {
			db.Close()
			return nil, fmt.Errorf("attach database %s: %w", p, err)
		}
		db.schemas = append(db.schemas, alias)
	}
	return db, nil
}

// IsNotExist reports whether err says the database file does not exist.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
