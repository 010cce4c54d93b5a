package cluster

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
)

// Credential fields in Redis are sealed with AES-256-GCM under a key derived
// from [cluster] secret, which never leaves the config: anyone who reads
// Redis (a backup, a replica, a MONITOR session) sees no token. Each value
// has a random nonce and is authenticated with its account id and field name,
// so a sealed value moved to another account or field does not open.
//
// A sealed value is sealPrefix + base64(nonce || ciphertext+tag). A value
// without the prefix is a plaintext token, as a relay older than the
// encryption wrote it, or as anyone who can write to Redis could plant it to
// swap an account's token. It is refused (errPlaintext) unless [cluster]
// accept_plaintext_credentials is on; then it is read, logged, and replaced
// by its sealed form (see conn.credential).

// sealPrefix marks a sealed value (version 1: AES-256-GCM, HKDF-SHA256 key).
const sealPrefix = "aesgcm1:"

// hkdfInfo binds the derived key to this use of the secret.
const hkdfInfo = "ccrelay cluster credential encryption v1"

// sealedFields are the credential hash fields that hold secrets.
var sealedFields = []string{"refresh_token", "access_token"}

// errWrongSecret means a sealed credential does not open with this relay's
// secret: another relay wrote it under a different [cluster] secret (or it
// was damaged or moved). Credential never falls back to a local copy then.
var errWrongSecret = errors.New("it does not decrypt with this relay's [cluster] secret; every relay of a cluster needs the same secret")

// errNoSecret means Redis holds a sealed credential but this relay has no
// secret to open it.
var errNoSecret = errors.New("it is encrypted and this relay has no [cluster] secret; set the cluster's secret")

// errPlaintext means Redis holds a credential in plain text and this relay
// does not accept that.
var errPlaintext = errors.New("it is stored in Redis in plain text, which this relay refuses: whoever can write to Redis could have planted it; if a relay older than the encryption wrote it, set [cluster] accept_plaintext_credentials = true for the upgrade (it is then sealed) and back to false afterwards")

// newSealer derives the AES-256-GCM key from secret; nil for an empty
// secret (no credentials shared, see config validation).
func newSealer(secret string) (cipher.AEAD, error) {
	if secret == "" {
		return nil, nil
	}
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, hkdfInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("cluster: derive the credential key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cluster: credential cipher: %w", err)
	}
	return cipher.NewGCM(block)
}

// additionalData ties a sealed value to its account and field.
func additionalData(acct, field string) []byte {
	return []byte("ccrelay/cred/" + acct + "/" + field)
}

// seal encrypts one credential field of acct. An empty value stays empty.
func (c *conn) seal(acct, field, v string) string {
	if v == "" || c.aead == nil {
		return v
	}
	nonce := make([]byte, c.aead.NonceSize(), c.aead.NonceSize()+len(v)+c.aead.Overhead())
	_, _ = rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
	out := c.aead.Seal(nonce, nonce, []byte(v), additionalData(acct, field))
	return sealPrefix + base64.RawStdEncoding.EncodeToString(out)
}

// open decrypts one credential field of acct. plain reports a value stored
// in plain text (returned as it is), which is an error (errPlaintext) unless
// the relay accepts plain text.
func (c *conn) open(acct, field, v string) (s string, plain bool, err error) {
	rest, sealed := strings.CutPrefix(v, sealPrefix)
	if !sealed {
		if v != "" && !c.acceptPlain {
			return "", true, errPlaintext
		}
		return v, v != "", nil
	}
	if c.aead == nil {
		return "", false, errNoSecret
	}
	raw, err := base64.RawStdEncoding.DecodeString(rest)
	if err != nil || len(raw) < c.aead.NonceSize() {
		return "", false, errWrongSecret
	}
	nonce, ct := raw[:c.aead.NonceSize()], raw[c.aead.NonceSize():]
	pt, err := c.aead.Open(nil, nonce, ct, additionalData(acct, field))
	if err != nil {
		return "", false, errWrongSecret
	}
	return string(pt), false, nil
}

// warnPlaintextRedis logs when credentials would cross a network in clear
// text: a redis:// (no TLS) URL whose host is not a loopback address.
func warnPlaintextRedis(log *slog.Logger, redisURL string) {
	u, err := url.Parse(redisURL)
	if err != nil || u.Scheme != "redis" {
		return
	}
	host := u.Hostname()
	if host == "" || host == "localhost" {
		return
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return
	}
	log.Warn("the cluster's redis_url is redis:// (no TLS) to a host that is not this machine: Redis passwords, sessions and the (encrypted) credentials cross the network readable and alterable by anyone on the path; use rediss://",
		"redis_host", host)
}
