/* test-conf.c: conf/conf.h, the JSON map reader.  Good maps give the
 * model; every bad map is refused with a message naming the JSON pointer of
 * the bad key.  Nothing here opens a backend (conf only checks keys). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "conf/conf.h"

#define ERRSZ 1024
#define LABEL "t.json"
#define BASE "/srv/maps"

/* Building blocks of small maps. */
#define PORTALS "\"portals\": [\"127.0.0.1:3260\"]"
#define TNAME "\"name\": \"iqn.2026-01.com.example:t0\""
#define MEM(size) "\"backend\": {\"type\": \"memory\", \"size\": \"" size "\"}"
#define LUN(n) "{\"lun\": " #n ", " MEM("1M") "}"
#define TARGET(luns) "{" TNAME ", \"luns\": [" luns "]}"
#define MAP(targets) "{" PORTALS ", \"targets\": [" targets "]}"
#define MAP1(lun) MAP(TARGET(lun))

static struct conf *
load(const char *json, char *err)
{
	err[0] = '\0';
	return conf_load_string(json, BASE, LABEL, err, ERRSZ);
}

/* The map is refused; the message is "t.json: POINTER: ..." and contains
 * what. */
#define CHECK_BAD(json, pointer, what)                                        \
	do {                                                                  \
		char err_[ERRSZ];                                             \
		struct conf *c_ = load((json), err_);                         \
		if (!CHECK(c_ == NULL))                                       \
			conf_free(c_);                                        \
		CHECK_CONTAINS(err_, LABEL ": " pointer ": ");                \
		CHECK_CONTAINS(err_, what);                                   \
	} while (0)

TEST(good_minimal_map)
{
	char err[ERRSZ];
	struct conf *c = load(MAP1(LUN(0)), err);

	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->path, LABEL);
	REQUIRE(c->nportals == 1);
	CHECK_EQ_STR(c->portals[0], "127.0.0.1:3260");
	CHECK(c->state_dir == NULL);
	CHECK_EQ_INT(c->io_threads, 16);
	/* Defaults of the iscsi table. */
	CHECK_EQ_INT(c->iscsi.max_recv_data_segment_length, 262144);
	CHECK_EQ_INT(c->iscsi.max_burst_length, 1048576);
	CHECK_EQ_INT(c->iscsi.first_burst_length, 262144);
	CHECK_EQ_INT(c->iscsi.initial_r2t, false);
	CHECK_EQ_INT(c->iscsi.immediate_data, true);
	CHECK_EQ_INT(c->iscsi.max_outstanding_r2t, 16);
	CHECK_EQ_INT(c->iscsi.queue_depth, 128);
	CHECK_EQ_INT(c->iscsi.nop_interval, 15);
	CHECK_EQ_INT(c->iscsi.nop_timeout, 15);
	CHECK_EQ_INT(c->iscsi.login_timeout, 30);
	CHECK_EQ_INT(c->iscsi.max_connections, 1024);
	REQUIRE(c->ntargets == 1);
	CHECK_EQ_STR(c->targets[0].name, "iqn.2026-01.com.example:t0");
	CHECK(c->targets[0].alias == NULL);
	CHECK(c->targets[0].acl == NULL);
	CHECK_EQ_INT(c->targets[0].nacl, 0);
	REQUIRE(c->targets[0].nluns == 1);
	{
		struct conf_lun *l = &c->targets[0].luns[0];
		CHECK_EQ_INT(l->lun, 0);
		CHECK_EQ_INT(l->block_size, 512);
		CHECK(!l->read_only);
		CHECK(!l->thin);
		CHECK(!l->write_cache);
		CHECK(l->serial == NULL);
		CHECK_EQ_STR(l->backend_type, "memory");
		CHECK_EQ_STR(l->pointer, "/targets/0/luns/0");
		REQUIRE(l->nbkeys == 1);
		CHECK_EQ_STR(l->bkeys[0].key, "size");
		CHECK_EQ_STR(l->bkeys[0].value, "1M");
	}
	conf_free(c);
}

TEST(good_full_map)
{
	static const char json[] =
		"{\n"
		"  \"portals\": [\"0.0.0.0:3260\", \"[::1]:3261\"],\n"
		"  \"state_dir\": \"state\",\n"
		"  \"io_threads\": 4,\n"
		"  \"iscsi\": {\"max_recv_data_segment_length\": 65536,\n"
		"            \"max_burst_length\": 524288,\n"
		"            \"first_burst_length\": 524288,\n"
		"            \"initial_r2t\": true, \"immediate_data\": false,\n"
		"            \"max_outstanding_r2t\": 1, \"queue_depth\": 1024,\n"
		"            \"nop_interval\": 0, \"nop_timeout\": 3600,\n"
		"            \"login_timeout\": 1, \"max_connections\": 65536},\n"
		"  \"targets\": [\n"
		"    {\"name\": \"iqn.2026-01.com.example:a\", \"alias\": \"disk a\",\n"
		"     \"acl\": [\"iqn.1994-05.com.redhat:client\", \"eui.0123456789ABCDEF\"],\n"
		"     \"luns\": [\n"
		"       {\"lun\": 7, \"block_size\": 4096, \"thin\": true,\n"
		"        \"write_cache\": true, \"serial\": \"SN-7\",\n"
		"        \"backend\": {\"type\": \"memory\", \"size\": 1048576}},\n"
		"       {\"lun\": 16383, \"read_only\": true,\n"
		"        \"backend\": {\"type\": \"file\", \"path\": \"disk.img\",\n"
		"                    \"resize\": true}},\n"
		"       {\"lun\": 0, \"backend\": {\"type\": \"file\",\n"
		"                    \"path\": \"/abs/disk.img\"}}\n"
		"     ]},\n"
		"    {\"name\": \"naa.0123456789ABCDEF\", \"luns\": []}\n"
		"  ]\n"
		"}\n";
	char err[ERRSZ];
	struct conf *c = load(json, err);
	struct conf_target *t;

	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	REQUIRE(c->nportals == 2);
	CHECK_EQ_STR(c->portals[1], "[::1]:3261");
	CHECK_EQ_STR(c->state_dir, BASE "/state");
	CHECK_EQ_INT(c->io_threads, 4);
	CHECK_EQ_INT(c->iscsi.max_recv_data_segment_length, 65536);
	CHECK_EQ_INT(c->iscsi.max_burst_length, 524288);
	CHECK_EQ_INT(c->iscsi.first_burst_length, 524288);
	CHECK_EQ_INT(c->iscsi.initial_r2t, true);
	CHECK_EQ_INT(c->iscsi.immediate_data, false);
	CHECK_EQ_INT(c->iscsi.max_outstanding_r2t, 1);
	CHECK_EQ_INT(c->iscsi.queue_depth, 1024);
	CHECK_EQ_INT(c->iscsi.nop_interval, 0);
	CHECK_EQ_INT(c->iscsi.nop_timeout, 3600);
	CHECK_EQ_INT(c->iscsi.login_timeout, 1);
	CHECK_EQ_INT(c->iscsi.max_connections, 65536);
	REQUIRE(c->ntargets == 2);
	t = &c->targets[0];
	CHECK_EQ_STR(t->alias, "disk a");
	REQUIRE(t->nacl == 2);
	CHECK_EQ_STR(t->acl[0], "iqn.1994-05.com.redhat:client");
	CHECK_EQ_STR(t->acl[1], "eui.0123456789ABCDEF");
	REQUIRE(t->nluns == 3);
	/* LUNs stay in map order (lunmap sorts them). */
	CHECK_EQ_INT(t->luns[0].lun, 7);
	CHECK_EQ_INT(t->luns[0].block_size, 4096);
	CHECK(t->luns[0].thin);
	CHECK(t->luns[0].write_cache);
	CHECK(!t->luns[0].read_only);
	CHECK_EQ_STR(t->luns[0].serial, "SN-7");
	REQUIRE(t->luns[0].nbkeys == 1);
	/* Integers are handed to the backend as strings. */
	CHECK_EQ_STR(t->luns[0].bkeys[0].value, "1048576");
	CHECK_EQ_INT(t->luns[1].lun, 16383);
	CHECK(t->luns[1].read_only);
	CHECK_EQ_STR(t->luns[1].backend_type, "file");
	CHECK_EQ_STR(t->luns[1].pointer, "/targets/0/luns/1");
	REQUIRE(t->luns[1].nbkeys == 2);
	/* A relative path is resolved against the map's folder... */
	CHECK_EQ_STR(t->luns[1].bkeys[0].key, "path");
	CHECK_EQ_STR(t->luns[1].bkeys[0].value, BASE "/disk.img");
	/* ...booleans become "true"/"false"... */
	CHECK_EQ_STR(t->luns[1].bkeys[1].key, "resize");
	CHECK_EQ_STR(t->luns[1].bkeys[1].value, "true");
	/* ...and an absolute path is kept. */
	REQUIRE(t->luns[2].nbkeys == 1);
	CHECK_EQ_STR(t->luns[2].bkeys[0].value, "/abs/disk.img");
	CHECK_EQ_STR(c->targets[1].name, "naa.0123456789ABCDEF");
	CHECK_EQ_INT(c->targets[1].nluns, 0);
	conf_free(c);
}

TEST(comments_ignored_at_every_level)
{
	static const char json[] =
		"{\"#\": \"top comment\", \"#top\": {\"any\": [1, 2]},"
		PORTALS ","
		"\"iscsi\": {\"#why\": \"tuning\", \"queue_depth\": 8},"
		"\"targets\": [{\"#t\": 1, " TNAME ", \"luns\": ["
		"  {\"#l\": null, \"lun\": 0,"
		"   \"backend\": {\"#b\": \"note\", \"type\": \"memory\","
		"                 \"size\": \"1M\"}}]}]}";
	char err[ERRSZ];
	struct conf *c = load(json, err);

	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	CHECK_EQ_INT(c->iscsi.queue_depth, 8);
	REQUIRE(c->ntargets == 1 && c->targets[0].nluns == 1);
	/* The backend comment is not handed to the backend. */
	REQUIRE(c->targets[0].luns[0].nbkeys == 1);
	CHECK_EQ_STR(c->targets[0].luns[0].bkeys[0].key, "size");
	conf_free(c);
}

TEST(top_level_errors)
{
	CHECK_BAD("[]", "/", "the map must be a JSON object");
	CHECK_BAD("{\"targets\": []}", "/", "'portals' is required");
	CHECK_BAD("{" PORTALS "}", "/", "'targets' is required");
	CHECK_BAD("{" PORTALS ", \"targets\": {}}", "/targets",
		  "must be an array");
	CHECK_BAD("{\"portals\": [], \"targets\": []}", "/portals",
		  "must be a non-empty array");
	CHECK_BAD("{\"portals\": \"a:1\", \"targets\": []}", "/portals",
		  "must be a non-empty array");
	CHECK_BAD("{\"portals\": [\"foo\"], \"targets\": []}", "/portals/0",
		  "must be \"HOST:PORT\" or \"[IPV6]:PORT\"");
	CHECK_BAD("{\"portals\": [\"a:1\", 3260], \"targets\": []}",
		  "/portals/1", "must be \"HOST:PORT\"");
	CHECK_BAD("{\"portals\": [\"a:1\", \"b:99999\"], \"targets\": []}",
		  "/portals/1", "must be \"HOST:PORT\"");
	CHECK_BAD("{" PORTALS ", \"io_threads\": 0, \"targets\": []}",
		  "/io_threads", "0 is out of range (1..256)");
	CHECK_BAD("{" PORTALS ", \"io_threads\": \"4\", \"targets\": []}",
		  "/io_threads", "must be an integer");
	CHECK_BAD("{" PORTALS ", \"state_dir\": \"\", \"targets\": []}",
		  "/", "'state_dir' must be a non-empty string");
}

TEST(unknown_keys_named)
{
	CHECK_BAD("{" PORTALS ", \"targets\": [], \"portal\": 1}", "/",
		  "unknown key 'portal'");
	CHECK_BAD(MAP("{" TNAME ", \"lun\": [], \"luns\": []}"), "/targets/0",
		  "unknown key 'lun'");
	CHECK_BAD(MAP1("{\"lun\": 0, \"blocksize\": 512, " MEM("1M") "}"),
		  "/targets/0/luns/0", "unknown key 'blocksize'");
	CHECK_BAD(MAP1(LUN(0) ", {\"lun\": 1, \"backend\": {\"type\": "
		       "\"memory\", \"size\": \"1M\", \"sise\": \"2M\"}}"),
		  "/targets/0/luns/1/backend/sise",
		  "unknown key 'sise' for backend type memory");
	CHECK_BAD("{" PORTALS ", \"iscsi\": {\"max_burst\": 512}, "
		  "\"targets\": []}", "/iscsi", "unknown key 'max_burst'");
}

TEST(chap_settings)
{
	char err[1024];
	char path[] = "/tmp/igw-test-secretXXXXXX";
	int fd = mkstemp(path);
	char map[1024];
	struct conf *c;

	CHECK_BAD(MAP("{" TNAME ", \"chap\": {}, \"luns\": []}"),
		  "/targets/0/chap", "'user' is required");
	CHECK_BAD(MAP("{" TNAME ", \"chap\": {\"user\": \"u\", "
		      "\"secret\": \"x\"}, \"luns\": []}"),
		  "/targets/0/chap", "inline 'secret' is not accepted");
	CHECK_BAD(MAP("{" TNAME ", \"chap\": {\"user\": \"u\", "
		      "\"secret_file\": \"/nonexistent/s\"}, \"luns\": []}"),
		  "/targets/0/chap/secret_file", "No such file");
	CHECK_BAD("{" PORTALS ", \"discovery_chap\": {}, \"targets\": []}",
		  "/discovery_chap", "'user' is required");

	/* A good one: the secret is the first line of the file. */
	CHECK(fd >= 0);
	CHECK(write(fd, "0123456789abcdef\nsecond line\n", 29) == 29);
	close(fd);
	snprintf(map, sizeof map,
		 "{" PORTALS ", \"targets\": [{" TNAME ", \"chap\": "
		 "{\"user\": \"alice\", \"secret_file\": \"%s\"}, "
		 "\"mutual_chap\": {\"user\": \"gw\", \"secret_file\": "
		 "\"%s\"}, \"luns\": []}]}", path, path);
	c = conf_load_string(map, NULL, "t.json", err, sizeof err);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ_STR(c->targets[0].chap->user, "alice");
		CHECK_EQ_STR(c->targets[0].chap->secret, "0123456789abcdef");
		CHECK_EQ_INT(c->targets[0].chap->secret_len, 16);
		CHECK_EQ_STR(c->targets[0].mutual_chap->user, "gw");
		conf_free(c);
	}
	/* mutual_chap alone is refused. */
	snprintf(map, sizeof map,
		 "{" PORTALS ", \"targets\": [{" TNAME ", \"mutual_chap\": "
		 "{\"user\": \"gw\", \"secret_file\": \"%s\"}, "
		 "\"luns\": []}]}", path);
	c = conf_load_string(map, NULL, "t.json", err, sizeof err);
	CHECK(c == NULL);
	CHECK(strstr(err, "'mutual_chap' needs 'chap'") != NULL);
	conf_free(c);
	unlink(path);
}

TEST(later_keys_not_supported)
{
	CHECK_BAD("{" PORTALS ", \"user\": 5, \"targets\": []}",
		  "/", "'user' must be a non-empty string");
}

/* control_socket (a path, relative to the map's folder) and metrics
 * ("HOST:PORT"): both optional, both refused by name when bad. */
TEST(control_socket_and_metrics)
{
	char err[ERRSZ];
	struct conf *c = load(MAP1(LUN(0)), err);

	REQUIRE(c != NULL);
	CHECK(c->control_socket == NULL);
	CHECK(c->metrics == NULL);
	conf_free(c);

	c = load("{" PORTALS ", \"control_socket\": \"run/igw.sock\", "
		 "\"metrics\": \"127.0.0.1:9480\", \"targets\": []}", err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->control_socket, BASE "/run/igw.sock");
	CHECK_EQ_STR(c->metrics, "127.0.0.1:9480");
	conf_free(c);

	c = load("{" PORTALS ", \"control_socket\": \"/run/igw.sock\", "
		 "\"metrics\": \"[::1]:9480\", \"targets\": []}", err);
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->control_socket, "/run/igw.sock");
	CHECK_EQ_STR(c->metrics, "[::1]:9480");
	conf_free(c);

	CHECK_BAD("{" PORTALS ", \"control_socket\": \"\", \"targets\": []}",
		  "/", "'control_socket' must be a non-empty string");
	CHECK_BAD("{" PORTALS ", \"control_socket\": 3, \"targets\": []}",
		  "/", "'control_socket' must be a non-empty string");
	CHECK_BAD("{" PORTALS ", \"control_socket\": \"/"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		  "aaaaaaaaaa\", \"targets\": []}",
		  "/control_socket", "longer than a Unix socket path");
	CHECK_BAD("{" PORTALS ", \"metrics\": \"nonsense\", \"targets\": []}",
		  "/metrics", "must be \"HOST:PORT\"");
	CHECK_BAD("{" PORTALS ", \"metrics\": 9480, \"targets\": []}",
		  "/metrics", "must be \"HOST:PORT\"");
	CHECK_BAD("{" PORTALS ", \"metrics\": \"h:99999\", \"targets\": []}",
		  "/metrics", "must be \"HOST:PORT\"");
	CHECK_BAD("{" PORTALS ", \"metrics\": \"\", \"targets\": []}",
		  "/metrics", "must be \"HOST:PORT\"");
}

TEST(target_name_errors)
{
	CHECK_BAD(MAP("{\"name\": \"iqn.2026-01.com.Example:t0\", \"luns\": []}"),
		  "/targets/0/name",
		  "'iqn.2026-01.com.Example:t0' is not a valid iSCSI name");
	CHECK_BAD(MAP("{\"name\": \"iqn.2026-1.x\", \"luns\": []}"),
		  "/targets/0/name", "'iqn.2026-1.x' is not a valid iSCSI name");
	CHECK_BAD(MAP("{\"luns\": []}"), "/targets/0", "'name' is required");
	CHECK_BAD(MAP("{\"name\": 5, \"luns\": []}"), "/targets/0",
		  "'name' must be a non-empty string");
	/* A NUL inside the name cannot hide the rest of it: the reader
	 * refuses it already. */
	{
		char err[ERRSZ];
		struct conf *c = load(MAP("{\"name\": \"iqn.2026-01.com.example:a"
					  "\\u0000b\", \"luns\": []}"), err);
		CHECK(c == NULL);
		conf_free(c);
		CHECK_CONTAINS(err, LABEL ":1:");
	}
	CHECK_BAD(MAP(TARGET(LUN(0)) ", " TARGET(LUN(0))), "/targets/1/name",
		  "target 'iqn.2026-01.com.example:t0' is defined twice");
	CHECK_BAD(MAP("{" TNAME "}"), "/targets/0", "'luns' is required");
	CHECK_BAD(MAP("{" TNAME ", \"luns\": {}}"), "/targets/0/luns",
		  "must be an array");
	CHECK_BAD(MAP("5"), "/targets/0", "must be an object");
	CHECK_BAD(MAP("{" TNAME ", \"acl\": \"iqn.2026-01.a:b\", \"luns\": []}"),
		  "/targets/0/acl", "must be an array of initiator names");
	CHECK_BAD(MAP("{" TNAME ", \"acl\": [\"iqn.2026-01.a:b\", \"bob\"], "
		      "\"luns\": []}"),
		  "/targets/0/acl/1", "must be a valid iSCSI initiator name");
}

TEST(acl_and_alias_edges)
{
	char err[ERRSZ];
	struct conf *c;
	char json[1024], alias[300];

	/* An empty acl admits nobody: it is kept, not dropped. */
	c = load(MAP("{" TNAME ", \"acl\": [], \"luns\": []}"), err);
	REQUIRE(c != NULL);
	CHECK(c->targets[0].acl != NULL);
	CHECK_EQ_INT(c->targets[0].nacl, 0);
	conf_free(c);
	/* Empty target list, empty LUN list. */
	c = load("{" PORTALS ", \"targets\": []}", err);
	CHECK(c != NULL);
	if (c)
		CHECK_EQ_INT(c->ntargets, 0);
	conf_free(c);
	/* alias: at most 255 characters. */
	memset(alias, 'a', 255);
	alias[255] = '\0';
	snprintf(json, sizeof json, MAP("{" TNAME ", \"alias\": \"%s\", \"luns\": []}"),
		 alias);
	c = load(json, err);
	CHECK(c != NULL);
	conf_free(c);
	alias[255] = 'a';
	alias[256] = '\0';
	snprintf(json, sizeof json, MAP("{" TNAME ", \"alias\": \"%s\", \"luns\": []}"),
		 alias);
	CHECK_BAD(json, "/targets/0", "'alias' is longer than 255 characters");
}

TEST(lun_errors)
{
	CHECK_BAD(MAP1(LUN(16384)), "/targets/0/luns/0/lun",
		  "16384 is out of range (0..16383)");
	CHECK_BAD(MAP1(LUN(-1)), "/targets/0/luns/0/lun",
		  "-1 is out of range (0..16383)");
	CHECK_BAD(MAP1("{\"lun\": \"0\", " MEM("1M") "}"),
		  "/targets/0/luns/0/lun", "must be an integer");
	CHECK_BAD(MAP1("{" MEM("1M") "}"), "/targets/0/luns/0",
		  "'lun' is required");
	CHECK_BAD(MAP1("{\"lun\": 0}"), "/targets/0/luns/0",
		  "'backend' (or 'per_initiator') is required");
	CHECK_BAD(MAP1(LUN(3) ", " LUN(4) ", " LUN(3)),
		  "/targets/0/luns/2/lun",
		  "LUN 3 is already used by /targets/0/luns/0");
	CHECK_BAD(MAP1("{\"lun\": 0, \"block_size\": 1024, " MEM("1M") "}"),
		  "/targets/0/luns/0/block_size", "must be 512 or 4096");
	CHECK_BAD(MAP1("{\"lun\": 0, \"block_size\": 8192, " MEM("1M") "}"),
		  "/targets/0/luns/0/block_size",
		  "8192 is out of range (512..4096)");
	CHECK_BAD(MAP1("{\"lun\": 0, \"read_only\": \"yes\", " MEM("1M") "}"),
		  "/targets/0/luns/0", "'read_only' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, \"thin\": 1, " MEM("1M") "}"),
		  "/targets/0/luns/0", "'thin' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, \"serial\": \"\", " MEM("1M") "}"),
		  "/targets/0/luns/0", "'serial' must be a non-empty string");
	CHECK_BAD(MAP1("{\"lun\": 0, \"serial\": "
		       "\"0123456789012345678901234567890123456789012345678901234567890123X\", "
		       MEM("1M") "}"),
		  "/targets/0/luns/0", "'serial' is longer than 64 characters");
	CHECK_BAD(MAP1("[0]"), "/targets/0/luns/0", "must be an object");
}

TEST(backend_errors)
{
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"nbd\"}}"),
		  "/targets/0/luns/0/backend",
		  "'uri' is required for backend type nbd");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"blockdev\"}}"),
		  "/targets/0/luns/0/backend",
		  "'path' is required for backend type blockdev");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"ceph\"}}"),
		  "/targets/0/luns/0/backend",
		  "unknown backend type 'ceph' (known: file, memory, blockdev, nbd, nbdkit, qemu-nbd)");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"size\": \"1M\"}}"),
		  "/targets/0/luns/0/backend", "'type' is required");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": \"memory\"}"),
		  "/targets/0/luns/0/backend", "must be an object");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"file\"}}"),
		  "/targets/0/luns/0/backend",
		  "'path' is required for backend type file");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"file\", "
		       "\"path\": \"x.img\", \"direct\": \"maybe\"}}"),
		  "/targets/0/luns/0/backend/direct",
		  "'direct' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, " MEM("12Q") "}"),
		  "/targets/0/luns/0/backend/size",
		  "size '12Q' is not a size such as 512M or 1G");
	CHECK_BAD(MAP1("{\"lun\": 0, " MEM("0") "}"),
		  "/targets/0/luns/0/backend/size", "size '0' is not a size");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"memory\"}}"),
		  "/targets/0/luns/0/backend",
		  "'size' is required for backend type memory");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"memory\", "
		       "\"size\": -1}}"),
		  "/targets/0/luns/0/backend/size", "must not be negative");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"memory\", "
		       "\"size\": [1]}}"),
		  "/targets/0/luns/0/backend/size/0", "must be a string");
	CHECK_BAD(MAP1("{\"lun\": 0, \"backend\": {\"type\": \"memory\", "
		       "\"size\": {}}}"),
		  "/targets/0/luns/0/backend/size",
		  "must be a string, a number, a boolean or an array of strings");
}

TEST(iscsi_option_errors)
{
#define ISCSI_MAP(opts) "{" PORTALS ", \"iscsi\": {" opts "}, \"targets\": []}"
	CHECK_BAD(ISCSI_MAP("\"max_burst_length\": 511"),
		  "/iscsi/max_burst_length", "511 is out of range (512..16777215)");
	CHECK_BAD(ISCSI_MAP("\"max_recv_data_segment_length\": 16777216"),
		  "/iscsi/max_recv_data_segment_length",
		  "16777216 is out of range (512..16777215)");
	CHECK_BAD(ISCSI_MAP("\"queue_depth\": 0"), "/iscsi/queue_depth",
		  "0 is out of range (1..1024)");
	CHECK_BAD(ISCSI_MAP("\"max_outstanding_r2t\": 65536"),
		  "/iscsi/max_outstanding_r2t", "out of range (1..65535)");
	CHECK_BAD(ISCSI_MAP("\"nop_timeout\": 0"), "/iscsi/nop_timeout",
		  "out of range (1..3600)");
	CHECK_BAD(ISCSI_MAP("\"login_timeout\": 4294967297"),
		  "/iscsi/login_timeout", "out of range (1..3600)");
	CHECK_BAD(ISCSI_MAP("\"max_burst_length\": \"1M\""),
		  "/iscsi/max_burst_length", "must be an integer");
	CHECK_BAD(ISCSI_MAP("\"max_burst_length\": 1.5"),
		  "/iscsi/max_burst_length", "must be an integer");
	CHECK_BAD(ISCSI_MAP("\"initial_r2t\": 1"), "/iscsi/initial_r2t",
		  "must be true or false");
	CHECK_BAD(ISCSI_MAP("\"first_burst_length\": 65537, "
			    "\"max_burst_length\": 65536"),
		  "/iscsi/first_burst_length",
		  "must not exceed max_burst_length (65536)");
	/* Against the default max_burst_length (1 MiB) too. */
	CHECK_BAD(ISCSI_MAP("\"first_burst_length\": 2097152"),
		  "/iscsi/first_burst_length",
		  "must not exceed max_burst_length (1048576)");
	CHECK_BAD("{" PORTALS ", \"iscsi\": [], \"targets\": []}", "/iscsi",
		  "must be an object");
	{
		char err[ERRSZ];
		struct conf *c = load(ISCSI_MAP("\"first_burst_length\": 65536, "
						"\"max_burst_length\": 65536"),
				      err);
		CHECK(c != NULL);
		CHECK_EQ_STR(err, "");
		conf_free(c);
	}
#undef ISCSI_MAP
}

TEST(malformed_json_line_column)
{
	char err[ERRSZ];
	struct conf *c;

	c = load("{\n  \"portals\": [\n    \"a:1\",\n  ]\n}", err);
	CHECK(c == NULL);
	conf_free(c);
	CHECK_CONTAINS(err, LABEL ":4:3: ");
	CHECK_CONTAINS(err, "unexpected token");

	c = load("{\n\"portals\": tru\n}", err);
	CHECK(c == NULL);
	conf_free(c);
	CHECK_CONTAINS(err, LABEL ":2:");
	CHECK_CONTAINS(err, "invalid token");

	/* Duplicate keys are refused, not silently merged. */
	c = load("{\"portals\": [\"a:1\"],\n \"portals\": [\"b:2\"], "
		 "\"targets\": []}", err);
	CHECK(c == NULL);
	conf_free(c);
	CHECK_CONTAINS(err, LABEL ":2:");
	CHECK_CONTAINS(err, "duplicate object key");

	c = load("", err);
	CHECK(c == NULL);
	conf_free(c);
	CHECK_CONTAINS(err, LABEL ":1:0: ");
}

TEST(error_message_truncated_safely)
{
	char err[24];
	struct conf *c;

	memset(err, 'Z', sizeof err);
	c = conf_load_string(MAP1(LUN(16384)), BASE, LABEL, err, sizeof err);
	CHECK(c == NULL);
	conf_free(c);
	CHECK(memchr(err, '\0', sizeof err) != NULL);
	CHECK_CONTAINS(err, LABEL ": /targets/");
}

TEST(valid_iscsi_name)
{
	static const char *const good[] = {
		"iqn.2026-01.com.example",
		"iqn.2026-01.com.example:t0",
		"iqn.1994-05.com.redhat:a-b.c:d",
		"iqn.2026-01.x",
		"eui.0123456789ABCDEF",
		"naa.0123456789ABCDEF",
		"naa.0123456789ABCDEF0123456789ABCDEF",
	};
	static const char *const bad[] = {
		"",
		"iqn.",
		"iqn.2026-01",
		"iqn.2026-01.",
		"iqn.2026-1.x",
		"iqn.26-01.x",
		"iqn.2026_01.x",
		"iqn.202a-01.x",
		"iqn.2026-01.com.Example",
		"iqn.2026-01.com.example:T0",
		"iqn.2026-01.a b",
		"iqn.2026-01.a/b",
		"IQN.2026-01.com.example",
		"eui.0123456789abcdef",
		"eui.0123456789ABCDE",
		"eui.0123456789ABCDEF0",
		"eui.0123456789ABCDEG",
		"naa.0123456789ABCDEF01",
		"naa.0123456789abcdef",
		"foo",
		"iqn2026-01.x",
	};
	char name[300];

	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
		CHECK_MSG(conf_valid_iscsi_name(good[i]), "good[%zu] = %s", i,
			  good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		CHECK_MSG(!conf_valid_iscsi_name(bad[i]), "bad[%zu] = %s", i,
			  bad[i]);
	/* At most 223 bytes (RFC 7143 §4.2.7.1). */
	strcpy(name, "iqn.2026-01.x");
	memset(name + strlen(name), 'a', 223 - strlen(name));
	name[223] = '\0';
	CHECK(conf_valid_iscsi_name(name));
	strcat(name, "a");
	CHECK(!conf_valid_iscsi_name(name));
}

/* conf_parse_portal: returns 0 with host and port, or -1. */
#define CHECK_PORTAL(s, want_host, want_port)                                 \
	do {                                                                  \
		char h_[64] = "unset";                                        \
		unsigned p_ = 0;                                              \
		CHECK_EQ_INT(conf_parse_portal((s), h_, sizeof h_, &p_), 0);  \
		CHECK_EQ_STR(h_, (want_host));                                \
		CHECK_EQ_INT(p_, (want_port));                                \
	} while (0)
#define CHECK_PORTAL_BAD(s)                                                   \
	do {                                                                  \
		char h_[64];                                                  \
		unsigned p_ = 0;                                              \
		CHECK_EQ_INT(conf_parse_portal((s), h_, sizeof h_, &p_), -1); \
	} while (0)

TEST(parse_portal)
{
	CHECK_PORTAL("[::1]:3260", "::1", 3260);
	CHECK_PORTAL("[fe80::1%eth0]:1", "fe80::1%eth0", 1);
	CHECK_PORTAL("127.0.0.1:3260", "127.0.0.1", 3260);
	CHECK_PORTAL("0.0.0.0:65535", "0.0.0.0", 65535);
	CHECK_PORTAL("storage.example.com:860", "storage.example.com", 860);
	CHECK_PORTAL_BAD("host");
	CHECK_PORTAL_BAD(":3260");
	CHECK_PORTAL_BAD("h:99999");
	CHECK_PORTAL_BAD("h:65536");
	CHECK_PORTAL_BAD("h:");
	CHECK_PORTAL_BAD("h:32a");
	CHECK_PORTAL_BAD("h:-1");
	CHECK_PORTAL_BAD("h:99999999999999999999999");
	CHECK_PORTAL_BAD("::1:3260");		/* v6 needs brackets */
	CHECK_PORTAL_BAD("[::1]");
	CHECK_PORTAL_BAD("[::1]3260");
	CHECK_PORTAL_BAD("[]:3260");
	CHECK_PORTAL_BAD("[::1:3260");
	CHECK_PORTAL_BAD("");
	{
		/* The host must fit hostbuf with its NUL. */
		char h[8];
		unsigned p;
		CHECK_EQ_INT(conf_parse_portal("abcdefg:1", h, sizeof h, &p), 0);
		CHECK_EQ_STR(h, "abcdefg");
		CHECK_EQ_INT(conf_parse_portal("abcdefgh:1", h, sizeof h, &p), -1);
		CHECK_EQ_INT(conf_parse_portal("[abcdefgh]:1", h, sizeof h, &p),
			     -1);
	}
}

/* fuse_mount (a folder, relative to the map's folder) and the per-LUN
 * fuse_writable (default false).  A build without libfuse3 refuses
 * fuse_mount by name. */
TEST(fuse_mount_and_fuse_writable)
{
	char err[ERRSZ];
	struct conf *c = load(MAP1(LUN(0)), err);

	REQUIRE(c != NULL);
	CHECK(c->fuse_mount == NULL);
	CHECK_EQ_INT(c->targets[0].luns[0].fuse_writable, false);
	conf_free(c);

	c = load(MAP1("{\"lun\": 0, \"fuse_writable\": true, " MEM("1M") "}, "
		      "{\"lun\": 1, \"fuse_writable\": false, " MEM("1M") "}, "
		      "{\"lun\": 2, \"read_only\": true, "
		      "\"fuse_writable\": true, " MEM("1M") "}"), err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	REQUIRE(c->targets[0].nluns == 3);
	CHECK_EQ_INT(c->targets[0].luns[0].fuse_writable, true);
	CHECK_EQ_INT(c->targets[0].luns[1].fuse_writable, false);
	/* Allowed; the view refuses writes with EROFS. */
	CHECK_EQ_INT(c->targets[0].luns[2].fuse_writable, true);
	conf_free(c);

	CHECK_BAD(MAP1("{\"lun\": 0, \"fuse_writable\": 1, " MEM("1M") "}"),
		  "/targets/0/luns/0", "'fuse_writable' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, \"fuse_writable\": \"yes\", "
		       MEM("1M") "}"),
		  "/targets/0/luns/0", "'fuse_writable' must be true or false");
	CHECK_BAD("{" PORTALS ", \"fuse_mount\": \"\", \"targets\": []}",
		  "/", "'fuse_mount' must be a non-empty string");
	CHECK_BAD("{" PORTALS ", \"fuse_mount\": true, \"targets\": []}",
		  "/", "'fuse_mount' must be a non-empty string");
#ifdef HAVE_FUSE3
	c = load("{" PORTALS ", \"fuse_mount\": \"view\", \"targets\": []}",
		 err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->fuse_mount, BASE "/view");
	conf_free(c);
	c = load("{" PORTALS ", \"fuse_mount\": \"/mnt/igw\", \"targets\": []}",
		 err);
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->fuse_mount, "/mnt/igw");
	conf_free(c);
	/* Comment keys next to it are ignored. */
	c = load("{" PORTALS ", \"#fuse_mount\": \"a note\", "
		 "\"fuse_mount\": \"v\", \"targets\": []}", err);
	CHECK_EQ_STR(err, "");
	CHECK(c != NULL);
	conf_free(c);
#else
	CHECK_BAD("{" PORTALS ", \"fuse_mount\": \"view\", \"targets\": []}",
		  "/fuse_mount", "needs libfuse3, which this build of iscsi-gw lacks");
#endif
}

/* per_initiator: a LUN template; every refusal names its key. */
#define PIMAP(pi) "{" PORTALS ", \"state_dir\": \"st\", \"targets\": [" \
	TARGET("{\"lun\": 0, \"per_initiator\": " pi "}") "]}"
TEST(per_initiator)
{
	char err[ERRSZ];
	struct conf *c;

	c = load(PIMAP("{\"kind\": \"overlay\", \"golden\": \"g.img\"}"), err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	REQUIRE(c->targets[0].luns[0].pi != NULL);
	CHECK(c->targets[0].luns[0].backend_type == NULL);
	CHECK_EQ_INT(c->targets[0].luns[0].pi->kind, PI_OVERLAY);
	CHECK_EQ_INT(c->targets[0].luns[0].pi->policy, PI_KEEP);
	CHECK_EQ_STR(c->targets[0].luns[0].pi->golden, BASE "/g.img");
	CHECK_EQ_STR(c->targets[0].luns[0].pi->golden_format, "raw");
	conf_free(c);
	c = load(PIMAP("{\"kind\": \"file\", \"size\": \"1G\", \"policy\": \"delete\"}"), err);
	REQUIRE(c != NULL);
	CHECK(c->targets[0].luns[0].pi->size == 1ULL << 30);
	CHECK_EQ_INT(c->targets[0].luns[0].pi->policy, PI_DELETE);
	conf_free(c);
	c = load(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg0\", \"origin\": \"golden\", "
		       "\"thin_pool\": \"pool0\", \"policy\": \"reset\"}"), err);
	REQUIRE(c != NULL);
	CHECK_EQ_STR(c->targets[0].luns[0].pi->prefix, "igw");
	CHECK_EQ_INT(c->targets[0].luns[0].pi->policy, PI_RESET);
	conf_free(c);
	c = load(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg0\", \"size\": \"10G\"}"), err);
	CHECK(c != NULL);
	conf_free(c);

	CHECK_BAD(MAP1("{\"lun\": 0, \"per_initiator\": {\"kind\": \"file\", \"size\": \"1G\"}}"),
		  "/targets/0/luns/0", "'state_dir'");
	CHECK_BAD(PIMAP("{\"kind\": \"clone\"}"),
		  "/targets/0/luns/0/per_initiator/kind", "unknown kind 'clone'");
	CHECK_BAD(PIMAP("{\"kind\": \"file\", \"size\": \"1G\", \"policy\": \"forever\"}"),
		  "/targets/0/luns/0/per_initiator/policy", "unknown policy");
	CHECK_BAD(PIMAP("{\"kind\": \"file\"}"),
		  "/targets/0/luns/0/per_initiator", "'size' is required");
	CHECK_BAD(PIMAP("{\"kind\": \"file\", \"size\": \"1X\"}"),
		  "/targets/0/luns/0/per_initiator/size", "must be a size");
	CHECK_BAD(PIMAP("{\"kind\": \"file\", \"size\": 1000}"),
		  "/targets/0/luns/0/per_initiator/size", "multiple of 4096");
	CHECK_BAD(PIMAP("{\"kind\": \"overlay\"}"),
		  "/targets/0/luns/0/per_initiator", "'golden' is required");
	CHECK_BAD(PIMAP("{\"kind\": \"overlay\", \"golden\": \"g\", \"size\": \"1G\"}"),
		  "/targets/0/luns/0/per_initiator", "golden image's");
	CHECK_BAD(PIMAP("{\"kind\": \"overlay\", \"golden\": \"g\", \"golden_format\": \"q;rm\"}"),
		  "/targets/0/luns/0/per_initiator/golden_format", "format name");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"size\": \"1G\"}"),
		  "/targets/0/luns/0/per_initiator", "'vg' is required");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg 0\", \"size\": \"1G\"}"),
		  "/targets/0/luns/0/per_initiator/vg", "not a volume group name");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"vg\": \"-vg\", \"size\": \"1G\"}"),
		  "/targets/0/luns/0/per_initiator/vg", "not a volume group name");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg0\", \"origin\": \"g\"}"),
		  "/targets/0/luns/0/per_initiator", "'thin_pool' is required");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg0\"}"),
		  "/targets/0/luns/0/per_initiator", "needs 'origin'");
	CHECK_BAD(PIMAP("{\"kind\": \"lvm\", \"vg\": \"vg0\", \"size\": \"1G\", \"prefix\": \"a/b\"}"),
		  "/targets/0/luns/0/per_initiator/prefix", "up to 32");
	CHECK_BAD(PIMAP("{\"kind\": \"file\", \"size\": \"1G\", \"colour\": 1}"),
		  "/targets/0/luns/0/per_initiator", "unknown key 'colour'");
	CHECK_BAD("{" PORTALS ", \"state_dir\": \"st\", \"targets\": [" TARGET("{\"lun\": 0, "
		  "\"per_initiator\": {\"kind\": \"file\", \"size\": \"1G\"}, " MEM("1M") "}") "]}",
		  "/targets/0/luns/0", "not both");
}

/* "removable" (default false): a boolean, on backend and per-initiator
 * LUNs alike; a change of it is a changed LUN for a reload. */
TEST(removable)
{
	char err[ERRSZ];
	struct conf *c = load(MAP1(LUN(0)), err);
	struct conf *d;

	REQUIRE(c != NULL);
	CHECK_EQ_INT(c->targets[0].luns[0].removable, false);
	conf_free(c);
	c = load(MAP1("{\"lun\": 0, \"removable\": true, " MEM("1M") "}, "
		      "{\"lun\": 1, \"removable\": false, " MEM("1M") "}, "
		      "{\"lun\": 2, \"read_only\": true, "
		      "\"removable\": true, " MEM("1M") "}"), err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	REQUIRE(c->targets[0].nluns == 3);
	CHECK_EQ_INT(c->targets[0].luns[0].removable, true);
	CHECK_EQ_INT(c->targets[0].luns[1].removable, false);
	CHECK_EQ_INT(c->targets[0].luns[2].removable, true);
	d = load(MAP1("{\"lun\": 0, " MEM("1M") "}, "
		      "{\"lun\": 1, " MEM("1M") "}, "
		      "{\"lun\": 2, \"read_only\": true, "
		      "\"removable\": true, " MEM("1M") "}"), err);
	REQUIRE(d != NULL);
	CHECK(!conf_lun_equal(&c->targets[0].luns[0], &d->targets[0].luns[0]));
	CHECK(conf_lun_equal(&c->targets[0].luns[1], &d->targets[0].luns[1]));
	CHECK(conf_lun_equal(&c->targets[0].luns[2], &d->targets[0].luns[2]));
	conf_free(c);
	conf_free(d);
	CHECK_BAD(MAP1("{\"lun\": 0, \"removable\": 1, " MEM("1M") "}"),
		  "/targets/0/luns/0", "'removable' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, \"removable\": \"yes\", " MEM("1M") "}"),
		  "/targets/0/luns/0", "'removable' must be true or false");
	CHECK_BAD(MAP1("{\"lun\": 0, \"removable\": null, " MEM("1M") "}"),
		  "/targets/0/luns/0", "'removable' must be true or false");
}

/* conf-diff.c: what a reload sees as changed. */
static void
count_key(const char *key, void *opaque)
{
	char *seen = opaque;

	strcat(seen, key);
	strcat(seen, " ");
}

TEST(reload_differences)
{
	char err[ERRSZ], seen[256] = "";
	struct conf *a = load(MAP(TARGET("{\"lun\": 0, " MEM("1M") "},"
					 "{\"lun\": 1, " MEM("1M") ", \"serial\": \"s1\"}")), err);
	/* Moved in the file (pointers differ), one serial changed, a
	 * backend key changed, io_threads and portals changed. */
	struct conf *b = load("{\"portals\": [\"127.0.0.1:3261\"], \"io_threads\": 4, "
			      "\"targets\": [" TARGET("{\"lun\": 1, " MEM("1M") ", \"serial\": \"s2\"},"
						      "{\"lun\": 0, " MEM("1M") "}") "]}", err);
	struct conf *c = load(MAP(TARGET("{\"lun\": 0, " MEM("2M") "}")), err);

	REQUIRE(a && b && c);
	CHECK(conf_lun_equal(&a->targets[0].luns[0], &b->targets[0].luns[1]));
	CHECK(!conf_lun_equal(&a->targets[0].luns[1], &b->targets[0].luns[0]));
	CHECK(!conf_lun_equal(&a->targets[0].luns[0], &c->targets[0].luns[0]));
	CHECK(conf_target_settings_equal(&a->targets[0], &b->targets[0]));
	CHECK_EQ_INT(conf_global_changes(a, a, count_key, seen), 0);
	CHECK_EQ_STR(seen, "");
	CHECK_EQ_INT(conf_global_changes(a, b, count_key, seen), 2);
	CHECK_EQ_STR(seen, "portals io_threads ");
	conf_free(a);
	conf_free(b);
	conf_free(c);
}

/* "networks": address filters per target. */
TEST(networks)
{
	char err[ERRSZ];
	struct conf *c;
	struct conf_net n;
	struct sockaddr_in a4 = { .sin_family = AF_INET };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6 };

	c = load(MAP("{" TNAME ", \"networks\": [\"10.1.2.3/8\", \"::1\", "
		     "\"192.0.2.0/28\"], \"luns\": [" LUN(0) "]}"), err);
	CHECK_EQ_STR(err, "");
	REQUIRE(c != NULL);
	REQUIRE(c->targets[0].nnets == 3);
	inet_pton(AF_INET, "10.200.0.1", &a4.sin_addr);
	CHECK(conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "11.0.0.1", &a4.sin_addr);
	CHECK(!conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "192.0.2.15", &a4.sin_addr);
	CHECK(conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a4));
	inet_pton(AF_INET, "192.0.2.16", &a4.sin_addr);
	CHECK(!conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a4));
	inet_pton(AF_INET6, "::1", &a6.sin6_addr);
	CHECK(conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a6));
	inet_pton(AF_INET6, "::2", &a6.sin6_addr);
	CHECK(!conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a6));
	/* An IPv4 peer on an IPv6 socket. */
	inet_pton(AF_INET6, "::ffff:10.9.9.9", &a6.sin6_addr);
	CHECK(conf_net_match(c->targets[0].nets, 3, (struct sockaddr *)&a6));
	/* No filter: everyone. */
	CHECK(conf_net_match(NULL, 0, (struct sockaddr *)&a6));
	conf_free(c);

	CHECK(conf_parse_net("0.0.0.0/0", &n) == 0 && n.prefix == 0);
	CHECK(conf_parse_net("2001:db8::/32", &n) == 0 && n.prefix == 32);
	CHECK(conf_parse_net("10.0.0.0/33", &n) < 0);
	CHECK(conf_parse_net("10.0.0.0/", &n) < 0);
	CHECK(conf_parse_net("host.example", &n) < 0);
	CHECK(conf_parse_net("::1/129", &n) < 0);
	CHECK_BAD(MAP("{" TNAME ", \"networks\": [\"10.0.0.0/40\"], \"luns\": [" LUN(0) "]}"),
		  "/targets/0/networks/0", "IPv4 or IPv6 address");
	CHECK_BAD(MAP("{" TNAME ", \"networks\": [], \"luns\": [" LUN(0) "]}"),
		  "/targets/0/networks", "non-empty array");
	CHECK_BAD(MAP("{" TNAME ", \"networks\": \"10.0.0.0/8\", \"luns\": [" LUN(0) "]}"),
		  "/targets/0/networks", "non-empty array");
}

int
main(int argc, char **argv)
{
	return harness_run(argc, argv);
}
