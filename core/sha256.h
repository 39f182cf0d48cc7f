/*
 * sha256: SHA-256 (FIPS 180-4) for the ledger's content hashes.
 *
 * None of the libraries flotilla links (libpq, libgit2, jansson, zlib)
 * exports a SHA-256, and OpenSSL is not a dependency, so this small one
 * lives here. It is checked against the FIPS 180-4 example vectors in
 * tests/test_engine.c. Streaming: init, any number of updates, final.
 */
#ifndef FL_SHA256_H
#define FL_SHA256_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint32_t h[8];
	uint64_t bytes;  /* total fed so far */
	uint8_t buf[64]; /* the block being filled */
	size_t nbuf;
} fl_sha256_ctx;

void fl_sha256_init(fl_sha256_ctx *c);
void fl_sha256_update(fl_sha256_ctx *c, const void *data, size_t len);
/* Writes the 32-byte digest; the context must be initialised again before reuse. */
void fl_sha256_final(fl_sha256_ctx *c, uint8_t out[32]);
/* Digest of one buffer as 64 lowercase hex digits and a NUL. */
void fl_sha256_hex(const void *data, size_t len, char out[65]);
/* A finished context's digest as hex (finalises c). */
void fl_sha256_final_hex(fl_sha256_ctx *c, char out[65]);

#endif
