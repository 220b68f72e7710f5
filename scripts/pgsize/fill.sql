-- Fills an ecto-server PostgreSQL database (migrations/postgres applied, any content) with a
-- large, skewed community set, set-based: INSERT ... SELECT generate_series(...) only.
--
--   psql -h 127.0.0.1 -U postgres -d ecto_size -v scale=1 -f scripts/pgsize/fill.sql
--
-- Every size has a default for scale=1 (10,000 servers, 10 million messages) that `scale`
-- multiplies; any one can be set on its own (-v messages=2000000). What it makes:
--   servers      rank r = 1..servers; community sizes fall off as a power of r (Zipf-like):
--                members ~ r^-0.9, messages ~ r^-1.1, channels ~ r^-0.5, roles ~ r^-0.35, so a
--                few communities are big (r = 1: ~6% of members, ~15% of messages) and most
--                are small. Every 4th server also has local accounts (20% of its members).
--   users        a pool of central users (cached_profiles); a member is a pool user chosen
--                with a stride, so users belong to several communities.
--   messages     spread over a server's text channels ~ (position+1)^-1.2 and over DM
--                conversations (dm_share of them); times from the channel's creation to now,
--                denser recently; inserted in id (= time) order, as a live server appends them,
--                so one channel's rows are scattered over the heap.
--                Content: phrases of a Zipf vocabulary (stop words, common chat words, then
--                thousands of made-up rare words), 2% with a link, 2.5% with a user mention.
-- Ids are UUIDv7 (48-bit unix milliseconds, version 7, RFC 4122 variant) with the row's own
-- time, as the application's Uuid::now_v7() makes them; so `ORDER BY id` is time order.
-- A message's id is a function of (channel id, sequence number), so replies, read states,
-- reactions, attachments, edits and activity items point at real messages without a lookup.
--
-- One session, no parallel workers. Foreign-key triggers are off while loading
-- (session_replication_role = replica: needs a superuser), the plain indexes are dropped
-- first and re-created from their saved definitions at the end (so indexes added later are
-- kept too), and the script ends with VACUUM and ANALYZE.

\set ON_ERROR_STOP on
\pset pager off
\timing on

\if :{?scale}
\else
\set scale 1
\endif
\if :{?servers}
\else
SELECT greatest(10, round(10000 * :scale))::int AS servers \gset
\endif
\if :{?messages}
\else
SELECT round(10000000 * :scale)::bigint AS messages \gset
\endif
\if :{?users}
\else
SELECT greatest(1000, round(500000 * :scale))::int AS users \gset
\endif
\if :{?members}
\else
SELECT round(1000000 * :scale)::bigint AS members \gset
\endif
-- channels of the biggest server; smaller ones have fewer (at least 3)
\if :{?max_channels}
\else
\set max_channels 120
\endif
-- roles of the biggest server (at least 2: @everyone and one more)
\if :{?max_roles}
\else
\set max_roles 25
\endif
-- how many days of history
\if :{?days}
\else
\set days 730
\endif
-- channel read states per member, on average
\if :{?read_states}
\else
\set read_states 4
\endif
-- share of the messages that are DMs, and DM conversations per member
\if :{?dm_share}
\else
\set dm_share 0.03
\endif
\if :{?dms_per_member}
\else
\set dms_per_member 0.1
\endif
\if :{?audit}
\else
SELECT round(1000000 * :scale)::bigint AS audit \gset
\endif
\if :{?activity}
\else
SELECT round(2000000 * :scale)::bigint AS activity \gset
\endif
-- distinct message texts (messages pick one at random)
\if :{?phrases}
\else
\set phrases 200000
\endif
\if :{?seed}
\else
\set seed 0.42
\endif

\echo pgsize: servers=:servers messages=:messages users=:users members=:members audit=:audit activity=:activity days=:days

SET client_min_messages = warning;
SET synchronous_commit = off;
SET work_mem = '256MB';
SET maintenance_work_mem = '1GB';
SET max_parallel_workers_per_gather = 0;
SET max_parallel_maintenance_workers = 0;
SET jit = off;
SET session_replication_role = replica;
SELECT setseed(:seed);

-- EVERYONE_DEFAULT of src/permissions.rs
SELECT (1::bigint << 14) | (1 << 15) | (1 << 16) | (1 << 17) | (1 << 18) | (1 << 19) | (1 << 20)
       | (1 << 25) | (1 << 21) | (1 << 22) | (1 << 6) AS everyone_bits \gset
SELECT (extract(epoch FROM date_trunc('minute', now())) * 1000)::bigint AS t_end \gset
SELECT :t_end - :days::bigint * 86400000 AS t_start \gset

-- A UUIDv7 of unix milliseconds `ms` and 18 hex digits `h` of randomness (the variant nibble
-- is always 8). Each argument is used once, so the planner inlines it.
CREATE FUNCTION pg_temp.u7(ms bigint, h text) RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT (lpad(to_hex(ms), 12, '0') || '7' || overlay(substr(h, 1, 18) PLACING '8' FROM 4 FOR 0))::uuid $$;
CREATE FUNCTION pg_temp.ts(ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE AS
$$ SELECT to_timestamp(ms / 1000.0) $$;
-- A number in [0, 1) from 8 hex digits of `h` at `pos`.
CREATE FUNCTION pg_temp.h01(h text, pos int) RETURNS float8 LANGUAGE sql IMMUTABLE AS
$$ SELECT ('x' || substr(h, pos, 8))::bit(32)::bigint / 4294967296.0 $$;
-- The id of user `i` of the central pool.
CREATE FUNCTION pg_temp.uid(i bigint, t0 bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.u7(t0 + i * 997, md5('user' || i)) $$;
-- When message `g` of `n` in a channel of [start, start + span) was sent: denser recently.
CREATE FUNCTION pg_temp.msg_ms(start bigint, span bigint, g bigint, n bigint) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$ SELECT start + (span * power(g::float8 / n, 0.6))::bigint $$;
-- The id of message `g` of channel `channel` sent at `ms`.
CREATE FUNCTION pg_temp.msg_id(ms bigint, channel uuid, g bigint) RETURNS uuid LANGUAGE sql IMMUTABLE AS
$$ SELECT pg_temp.u7(ms, md5(channel::text || g)) $$;

-------------------------------------------------------------------------------------------
-- Start from empty tables; drop the plain indexes (saved, re-created at the end).
-------------------------------------------------------------------------------------------
TRUNCATE servers, cached_profiles, central_sync_state, central_outbox CASCADE;

-- Saved in a real table, so that a run that fails half-way leaves them for the next run.
CREATE TABLE IF NOT EXISTS pgsize_saved_indexes (name text PRIMARY KEY, def text NOT NULL);
INSERT INTO pgsize_saved_indexes (name, def)
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = 'public' AND t.relname <> 'pgsize_saved_indexes'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
ON CONFLICT (name) DO NOTHING;
SELECT format('DROP INDEX %s', name) FROM pgsize_saved_indexes WHERE to_regclass(name) IS NOT NULL \gexec

-------------------------------------------------------------------------------------------
-- The plan: servers, members, roles, categories, channels, DM conversations (temp tables)
-------------------------------------------------------------------------------------------
SELECT sum(power(r, -0.9)) AS h_members, sum(power(r, -1.1)) AS h_messages, sum(power(r, -1.0)) AS h_audit
FROM generate_series(1, :servers) r \gset

CREATE TEMP TABLE srv AS
SELECT r,
       pg_temp.u7(created_ms, md5('server' || r)) AS id,
       created_ms,
       least(:users, greatest(3, round(:members * power(r, -0.9) / :h_members)))::int AS m,
       round(:messages * (1 - :dm_share) * power(r, -1.1) / :h_messages)::bigint AS n_msgs,
       greatest(3, least(:max_channels, round(:max_channels * power(r, -0.5))))::int AS nch,
       greatest(2, round(:max_roles * power(r, -0.35)))::int AS nroles,
       greatest(1, round(:audit * power(r, -1.0) / :h_audit))::int AS n_audit,
       r % 4 = 0 AS has_local,
       (random() * :users)::bigint AS pool_off
FROM (SELECT r, :t_start + ((:t_end - :t_start) * least(0.95,
             0.9 * power((r - 1)::float8 / :servers, 0.7) + 0.05 * random()))::bigint AS created_ms
      FROM generate_series(1, :servers) r) s;
ALTER TABLE srv ADD PRIMARY KEY (r);

-- Member k of server r (k = 0 founded it); members joined ever faster. A pool user is
-- (pool_off + k * 1000003) mod users: distinct within a server, shared between servers.
CREATE TEMP TABLE mem AS
SELECT s.r AS sr, k, j.join_ms,
       CASE WHEN s.has_local AND k % 5 = 4 THEN 'local' ELSE 'global' END AS identity,
       CASE WHEN s.has_local AND k % 5 = 4 THEN pg_temp.u7(j.join_ms, md5('local' || s.r || ':' || k))
            ELSE pg_temp.uid((s.pool_off + k * 1000003::bigint) % :users, :t_start - 86400000::bigint * 60) END AS user_id,
       pg_temp.u7(j.join_ms, md5('member' || s.r || ':' || k)) AS id
FROM srv s
CROSS JOIN LATERAL generate_series(0, s.m - 1) k
CROSS JOIN LATERAL (SELECT s.created_ms + ((:t_end - s.created_ms) * power(k::float8 / s.m, 0.6))::bigint AS join_ms) j;
ALTER TABLE mem ADD PRIMARY KEY (sr, k);

CREATE TEMP TABLE rol AS
SELECT s.r AS sr, j, pg_temp.u7(s.created_ms + j * 3600000, md5('role' || s.r || ':' || j)) AS id,
       s.created_ms + j * 3600000 AS created_ms
FROM srv s CROSS JOIN LATERAL generate_series(0, s.nroles - 1) j;
ALTER TABLE rol ADD PRIMARY KEY (sr, j);

CREATE TEMP TABLE cat AS
SELECT s.r AS sr, j, pg_temp.u7(s.created_ms + j * 60000, md5('category' || s.r || ':' || j)) AS id,
       s.created_ms + j * 60000 AS created_ms
FROM srv s CROSS JOIN LATERAL generate_series(0, (s.nch - 1) / 6) j;
ALTER TABLE cat ADD PRIMARY KEY (sr, j);

-- Channel c of server r: every 10th (c % 10 = 7) is voice, c = 5 a page, the rest text;
-- text channels share the server's messages ~ (c+1)^-1.2. Channels of higher positions
-- were made later.
CREATE TEMP TABLE chan AS
SELECT x.*, CASE WHEN x.kind = 'text'
                 THEN round(x.n_msgs * power(x.c + 1, -1.2)
                            / sum(CASE WHEN x.kind = 'text' THEN power(x.c + 1, -1.2) END) OVER (PARTITION BY x.sr))::bigint
                 ELSE 0 END AS n
FROM (SELECT s.r AS sr, s.id AS sid, c, s.m, s.n_msgs,
             CASE WHEN c % 10 = 7 THEN 'voice' WHEN c = 5 THEN 'page' ELSE 'text' END AS kind,
             cm.created_ms,
             pg_temp.u7(cm.created_ms, md5('channel' || s.r || ':' || c)) AS id
      FROM srv s
      CROSS JOIN LATERAL generate_series(0, s.nch - 1) c
      CROSS JOIN LATERAL (SELECT s.created_ms + 60000 * (c + 1)
                                 + CASE WHEN c < 3 THEN 0
                                        ELSE ((:t_end - s.created_ms) * 0.6 * c / s.nch)::bigint END AS created_ms) cm) x;
ALTER TABLE chan ADD PRIMARY KEY (sr, c);

-- DM conversations between two members of a server (made at the later one's join).
CREATE TEMP TABLE dmc AS
SELECT DISTINCT ON (sr, user_a, user_b) *
FROM (SELECT p.sr, p.sid,
             least(a.user_id, b.user_id) AS user_a, greatest(a.user_id, b.user_id) AS user_b,
             CASE WHEN a.user_id < b.user_id THEN p.ka ELSE p.kb END AS k_a,
             CASE WHEN a.user_id < b.user_id THEN p.kb ELSE p.ka END AS k_b,
             least(greatest(a.join_ms, b.join_ms) + 3600000, :t_end - 3600000) AS created_ms
      FROM (SELECT s.r AS sr, s.id AS sid, floor(s.m * power(random(), 2))::int AS ka,
                   floor(s.m * random())::int AS kb
            FROM srv s CROSS JOIN LATERAL generate_series(1, ceil(s.m * :dms_per_member)::int) j
            OFFSET 0) p
      JOIN mem a ON a.sr = p.sr AND a.k = p.ka
      JOIN mem b ON b.sr = p.sr AND b.k = p.kb
      WHERE p.ka <> p.kb) d
ORDER BY sr, user_a, user_b;
ALTER TABLE dmc ADD COLUMN id uuid;
UPDATE dmc SET id = pg_temp.u7(created_ms, md5(user_a::text || user_b::text));
-- DM messages: a skewed share of dm_share * messages each.
ALTER TABLE dmc ADD COLUMN w float8;
UPDATE dmc SET w = power(random(), 3);
SELECT sum(w) AS dm_w FROM dmc \gset

-- Every message stream: the text channels and the DM conversations, with n messages each
-- over [start_ms, start_ms + span_ms). A stream's last message is not "now": it went quiet
-- for an exponential gap of its own pace (a busy channel minutes ago, a small one weeks ago).
CREATE TEMP TABLE streams AS
SELECT sr, sid, id, m, n, start_ms,
       greatest(60000, end_ms - start_ms - (-ln(1 - random()) * 0.6 * (end_ms - start_ms) / n)::bigint) AS span_ms,
       k_a, k_b
FROM (SELECT c.sr, c.sid, c.id, c.m, c.n, c.created_ms + 60000 AS start_ms, :t_end - 60000 AS end_ms,
             NULL::int AS k_a, NULL::int AS k_b
      FROM chan c WHERE c.kind = 'text' AND c.n > 0
      UNION ALL
      SELECT d.sr, d.sid, d.id, 2, round(:messages * :dm_share * d.w / :dm_w)::bigint, d.created_ms + 60000,
             :t_end - 60000, d.k_a, d.k_b
      FROM dmc d WHERE round(:messages * :dm_share * d.w / :dm_w) > 0) s;
ALTER TABLE streams ADD PRIMARY KEY (id);

-------------------------------------------------------------------------------------------
-- Vocabulary and phrases for message content
-------------------------------------------------------------------------------------------
-- Real words first, most common first (stop words included: search ignores them), then
-- 15,000 made-up words in no particular order.
CREATE TEMP TABLE vocab AS
SELECT (row_number() OVER (ORDER BY rare, CASE WHEN rare THEN md5(w) END, n) - 1)::int AS i, w, rare
FROM (SELECT false AS rare, w, n
      FROM unnest(string_to_array(
  'the i to a you and it is that of in for this on my be just have so but not with are was '
  'me we can do what if at like all get your lol yeah no its im about how out up will one '
  'know think good now there time more when dont some they go did then here also got really '
  'thanks game server new people work need see want make still today anyone way back use '
  'right well day help any too update release bug fix build test deploy channel message '
  'voice role music stream video chat post link image file code rust docs issue version '
  'team event night week weekend match play played playing win lost ranked raid boss quest '
  'item map patch mod mods discord ecto client mobile desktop login password account invite '
  'friend friends welcome hello hey morning nice cool awesome great love hate maybe probably '
  'actually sure please sorry question answer problem error crash lag ping latency fps '
  'graphics settings config install download upload share screen camera mic audio sound '
  'meeting schedule tomorrow yesterday later soon earlier hour minute plan project idea '
  'design feature request review merge branch commit push pull release notes changelog '
  'database postgres sqlite index query cache memory cpu disk network cloud docker kubernetes '
  'linux windows mac android iphone keyboard mouse monitor laptop phone coffee pizza food '
  'movie show episode season book anime manga art drawing photo meme memes emoji sticker', ' ')) WITH ORDINALITY AS u(w, n)
      UNION ALL
      SELECT true, a || b || c || d, 0
      FROM unnest('{ka,lo,mi,ne,ru,sa,to,vi,zu,pe,qua,dri,sho,bel,gor,fen,tal,wyn,xo,yor}'::text[]) a,
           unnest('{ra,len,dor,mis,tek,vun,pol,sar,gim,hal,jor,ket,lim,nor,qin}'::text[]) b,
           unnest('{ix,on,ar,eth,um,os,ine,ary,ia,ex}'::text[]) c,
           unnest('{"",s,el,ok,ut}'::text[]) d) v;
SELECT count(*) FILTER (WHERE NOT rare) AS vocab_real, count(*) FILTER (WHERE rare) AS vocab_rare FROM vocab \gset
ALTER TABLE vocab ADD PRIMARY KEY (i);

-- A phrase is 2 to 26 words; a word is a real one (Zipf: "the" is 1 in 10) 85% of the time,
-- else a made-up one (skewed too: the rarest are in a few hundred of 10 million messages).
CREATE TEMP TABLE phrases AS
SELECT t.p AS i,
       string_agg(v.w, ' ' ORDER BY t.j)
         || CASE WHEN t.p % 50 = 7 THEN ' https://example.com/' || to_hex(t.p * 7919) ELSE '' END AS txt
FROM (SELECT p, j, CASE WHEN random() < 0.85 THEN floor(:vocab_real * power(random(), 2.5))::int
                         ELSE :vocab_real + floor(:vocab_rare * power(random(), 1.5))::int END AS wi
      FROM generate_series(0, :phrases - 1) p
      CROSS JOIN LATERAL generate_series(1, 2 + (power(random(), 2) * 24)::int + 0 * p) j
      OFFSET 0) t
JOIN vocab v ON v.i = t.wi
GROUP BY t.p;
ALTER TABLE phrases ADD PRIMARY KEY (i);

-------------------------------------------------------------------------------------------
-- Users, servers, members, roles, structure
-------------------------------------------------------------------------------------------
INSERT INTO cached_profiles (user_id, username, discriminator, display_name, avatar_url, fetched_at)
SELECT pg_temp.uid(i, :t_start - 86400000::bigint * 60), 'user' || i, lpad((i % 10000)::text, 4, '0'),
       CASE WHEN i % 3 = 0 THEN 'User ' || i END,
       CASE WHEN i % 2 = 0 THEN 'https://cdn.example.com/avatars/' || i || '.png' END,
       pg_temp.ts(:t_end - (random() * 86400000 * 30)::bigint)
FROM generate_series(0, :users - 1) i;

INSERT INTO servers (id, name, description, icon_url, banner_url, address, admin_user_id,
                     admin_identity_type, central_connected, default_channel_id, created_at, updated_at)
SELECT s.id, 'Community ' || s.r, 'A community of ' || s.m || ' members',
       'https://cdn.example.com/icons/' || s.r || '.png', NULL,
       'c' || s.r || '.size.test', m0.user_id, m0.identity, true, c0.id,
       pg_temp.ts(s.created_ms), pg_temp.ts(s.created_ms)
FROM srv s
JOIN mem m0 ON m0.sr = s.r AND m0.k = 0
JOIN chan c0 ON c0.sr = s.r AND c0.c = 0
ORDER BY s.id;

INSERT INTO server_config (server_id, setup_completed, allow_local_accounts, require_invite,
                           allow_member_dms, discoverable, discovery_approved, tags, created_at, updated_at)
SELECT s.id, true, s.has_local, s.r % 3 = 0, s.r % 2 = 0, s.r <= :servers / 10, s.r <= :servers / 20,
       CASE WHEN s.r % 5 = 0 THEN '["gaming"]' ELSE '[]' END::jsonb,
       pg_temp.ts(s.created_ms), pg_temp.ts(s.created_ms)
FROM srv s;

INSERT INTO custom_domains (server_id, domain, status)
SELECT s.id, 'chat.community' || s.r || '.example', 'active' FROM srv s WHERE s.r % 100 = 1;

INSERT INTO local_users (id, server_id, username, password_hash, display_name, created_at, updated_at)
SELECT m.user_id, s.id, 'local' || m.k,
       '$argon2id$v=19$m=19456,t=2,p=1$c2l6ZXNpemVzaXpl$0000000000000000000000000000000000000000000',
       CASE WHEN m.k % 2 = 0 THEN 'Local ' || m.k END, pg_temp.ts(m.join_ms), pg_temp.ts(m.join_ms)
FROM mem m JOIN srv s ON s.r = m.sr
WHERE m.identity = 'local';

INSERT INTO members (id, server_id, user_id, identity_type, nickname, allow_dms, token_version, joined_at)
SELECT m.id, s.id, m.user_id, m.identity, CASE WHEN m.k % 17 = 3 THEN 'nick' || m.k END,
       m.k % 9 <> 1, (m.k % 23 = 0)::int, pg_temp.ts(m.join_ms)
FROM mem m JOIN srv s ON s.r = m.sr
ORDER BY m.id;

-- @everyone has the default bits; role 1 is the admins, the others moderators and colours.
INSERT INTO roles (id, server_id, name, color, permissions, position, is_default, created_at)
SELECT r.id, s.id, CASE WHEN r.j = 0 THEN '@everyone' WHEN r.j = 1 THEN 'Admin' ELSE 'Role ' || r.j END,
       CASE WHEN r.j > 0 THEN '#' || lpad(to_hex((r.j * 2654435761) % 16777216), 6, '0') END,
       CASE WHEN r.j = 1 THEN 1                          -- ADMINISTRATOR
            WHEN r.j = 2 THEN :everyone_bits | 256 | 128 | 32 | 16  -- + manage messages, audit log, ban, kick
            ELSE :everyone_bits END,
       CASE WHEN r.j = 0 THEN 0 ELSE s.nroles - r.j END, r.j = 0, pg_temp.ts(r.created_ms)
FROM rol r JOIN srv s ON s.r = r.sr;

-- Everyone has @everyone; the founder is admin; a quarter of the members have one or two roles.
INSERT INTO member_roles (member_id, role_id)
SELECT m.id, r.id
FROM mem m
JOIN srv s ON s.r = m.sr
CROSS JOIN LATERAL (SELECT 0 AS j
                    UNION ALL SELECT 1 WHERE m.k = 0
                    UNION ALL SELECT 2 + m.k % (s.nroles - 2) WHERE s.nroles > 2 AND m.k % 4 = 1
                    UNION ALL SELECT 2 + (m.k + 1) % (s.nroles - 2) WHERE s.nroles > 3 AND m.k % 8 = 1) x
JOIN rol r ON r.sr = m.sr AND r.j = x.j;

INSERT INTO categories (id, server_id, name, position, created_at)
SELECT c.id, s.id, 'Category ' || c.j, c.j, pg_temp.ts(c.created_ms)
FROM cat c JOIN srv s ON s.r = c.sr;

INSERT INTO channels (id, server_id, category_id, name, type, topic, position, slowmode_seconds, nsfw, created_at, updated_at)
SELECT c.id, c.sid, ct.id, CASE WHEN c.c = 0 THEN 'general' ELSE c.kind || '-' || c.c END, c.kind,
       CASE WHEN c.c % 3 = 0 THEN 'Topic of channel ' || c.c END, c.c,
       CASE WHEN c.c % 13 = 4 THEN 10 ELSE 0 END, c.c % 29 = 11,
       pg_temp.ts(c.created_ms), pg_temp.ts(c.created_ms)
FROM chan c JOIN cat ct ON ct.sr = c.sr AND ct.j = c.c / 6;

-- Private channels (c % 10 = 3): @everyone may not read, the admins may.
INSERT INTO channel_permission_overrides (id, channel_id, target_type, target_id, allow, deny)
SELECT pg_temp.u7(c.created_ms, md5('cpo' || c.id || r.j)), c.id, 'role', r.id,
       CASE WHEN r.j = 1 THEN 16384 ELSE 0 END, CASE WHEN r.j = 0 THEN 16384 ELSE 0 END
FROM chan c JOIN rol r ON r.sr = c.sr AND r.j IN (0, 1)
WHERE c.c % 10 = 3;

INSERT INTO category_permission_overrides (id, category_id, target_type, target_id, allow, deny)
SELECT pg_temp.u7(c.created_ms, md5('kpo' || c.id)), c.id, 'role', r.id, 0, 32768
FROM cat c JOIN rol r ON r.sr = c.sr AND r.j = 0
WHERE c.j = 1;

INSERT INTO page_contents (channel_id, content, version, edited_by, edited_at)
SELECT c.id, '# Rules' || chr(10) || 'Be nice.', 1, m.user_id, pg_temp.ts(c.created_ms)
FROM chan c JOIN mem m ON m.sr = c.sr AND m.k = 0
WHERE c.kind = 'page';

INSERT INTO webhooks (id, channel_id, name, token, created_by, created_at)
SELECT pg_temp.u7(c.created_ms + 1000, md5('webhook' || c.id)), c.id, 'Hook ' || c.c,
       md5('token' || c.id) || md5('token2' || c.id), m.user_id, pg_temp.ts(c.created_ms + 1000)
FROM chan c JOIN mem m ON m.sr = c.sr AND m.k = 0
WHERE c.kind = 'text' AND c.c % 25 = 4;

INSERT INTO dm_conversations (id, server_id, user_a, user_b, last_message_at, created_at)
SELECT d.id, d.sid, d.user_a, d.user_b,
       CASE WHEN st.n > 0 THEN pg_temp.ts(pg_temp.msg_ms(st.start_ms, st.span_ms, st.n, st.n)) END,
       pg_temp.ts(d.created_ms)
FROM dmc d LEFT JOIN streams st ON st.id = d.id;

-------------------------------------------------------------------------------------------
-- Messages: message g (1..n) of each stream, in id (time) order
-------------------------------------------------------------------------------------------
INSERT INTO messages (id, server_id, channel_id, author_id, content, type, reply_to, pinned, deleted,
                      mention_everyone, mention_roles, mention_users, edited_at, created_at)
SELECT x.id, x.sid, x.cid, a.user_id,
       CASE WHEN x.mention_k IS NOT NULL THEN '<@' || mu.user_id || '> ' ELSE '' END || p.txt,
       0, x.reply_to, x.g % 997 = 5, x.g % 211 = 17, false, '[]'::jsonb,
       CASE WHEN x.mention_k IS NOT NULL THEN jsonb_build_array(mu.user_id) ELSE '[]'::jsonb END,
       CASE WHEN x.g % 100 = 37 THEN pg_temp.ts(x.ms + 90000) END,
       pg_temp.ts(x.ms)
FROM (SELECT st.sr, st.sid, st.id AS cid, g, t.ms,
             pg_temp.u7(t.ms, t.h) AS id,
             -- a reply to one of the 1..7 messages before it
             CASE WHEN g % 20 = 3 AND g > 8
                  THEN pg_temp.msg_id(pg_temp.msg_ms(st.start_ms, st.span_ms, g - 1 - g % 7, st.n), st.id, g - 1 - g % 7) END AS reply_to,
             -- the author: early members talk more; in a DM, one of the two
             CASE WHEN st.k_a IS NULL THEN floor(st.m * power(pg_temp.h01(t.h, 19), 2.5))::int
                  WHEN pg_temp.h01(t.h, 19) < 0.5 THEN st.k_a ELSE st.k_b END AS author_k,
             CASE WHEN g % 40 = 11 AND st.k_a IS NULL THEN floor(st.m * pg_temp.h01(t.h, 25))::int END AS mention_k,
             floor(:phrases * pg_temp.h01(t.h, 11))::int AS pi
      FROM streams st
      CROSS JOIN LATERAL generate_series(1, st.n) g
      CROSS JOIN LATERAL (SELECT pg_temp.msg_ms(st.start_ms, st.span_ms, g, st.n) AS ms) t0
      CROSS JOIN LATERAL (SELECT t0.ms, md5(st.id::text || g) AS h OFFSET 0) t
      OFFSET 0) x
JOIN mem a ON a.sr = x.sr AND a.k = x.author_k
JOIN phrases p ON p.i = x.pi
LEFT JOIN mem mu ON mu.sr = x.sr AND mu.k = x.mention_k
ORDER BY x.id;

-- A message's author, as the insert above chose it (for rows that name the author).
CREATE FUNCTION pg_temp.author_k(h text, m int, k_a int, k_b int) RETURNS int LANGUAGE sql IMMUTABLE AS
$$ SELECT CASE WHEN k_a IS NULL THEN floor(m * power(pg_temp.h01(h, 19), 2.5))::int
               WHEN pg_temp.h01(h, 19) < 0.5 THEN k_a ELSE k_b END $$;

-- One earlier version of every edited message (g % 100 = 37).
INSERT INTO message_edits (id, message_id, content, edited_at)
SELECT pg_temp.u7(t.ms + 90000, md5('edit' || st.id || g)), pg_temp.msg_id(t.ms, st.id, g),
       'an earlier version of this message', pg_temp.ts(t.ms + 90000)
FROM streams st
CROSS JOIN LATERAL generate_series(37, st.n, 100) g
CROSS JOIN LATERAL (SELECT pg_temp.msg_ms(st.start_ms, st.span_ms, g, st.n) AS ms) t
ORDER BY 1;

-- Attachments of one message in 50 (g % 50 = 3), uploaded by its author.
INSERT INTO attachments (id, server_id, message_id, channel_id, uploader_id, filename, url, storage_key,
                         content_type, size_bytes, created_at)
SELECT pg_temp.u7(x.ms - 5000, md5('att' || x.id)), x.sid, x.id, x.cid, a.user_id,
       'image-' || x.g || '.png', 'https://cdn.example.com/att/' || x.id || '.png',
       'attachments/' || x.sid || '/' || x.id || '.png', 'image/png', 20000 + (x.g * 7919) % 2000000,
       pg_temp.ts(x.ms - 5000)
FROM (SELECT st.sr, st.sid, st.id AS cid, g, t.ms, pg_temp.msg_id(t.ms, st.id, g) AS id,
             pg_temp.author_k(md5(st.id::text || g), st.m, st.k_a, st.k_b) AS k
      FROM streams st
      CROSS JOIN LATERAL generate_series(3, st.n, 50) g
      CROSS JOIN LATERAL (SELECT pg_temp.msg_ms(st.start_ms, st.span_ms, g, st.n) AS ms) t
      OFFSET 0) x
JOIN mem a ON a.sr = x.sr AND a.k = x.k
ORDER BY 1;

-- Reactions on one message in 10 (g % 10 = 1): 1 to 3 members, one emoji each.
INSERT INTO reactions (id, message_id, user_id, emoji, created_at)
SELECT pg_temp.u7(x.ms + 60000 * (x.j + 1), md5('re' || x.id || x.j)), x.id, a.user_id,
       (ARRAY['👍','❤️','😂','🎉','👀','🔥','+1','✅'])[1 + (x.g + x.j * 3) % 8],
       pg_temp.ts(x.ms + 60000 * (x.j + 1))
FROM (SELECT st.sr, g, j, t.ms, pg_temp.msg_id(t.ms, st.id, g) AS id,
             CASE WHEN st.k_a IS NULL THEN ((g * 31 + j) % st.m)::int
                  WHEN (g + j) % 2 = 0 THEN st.k_a ELSE st.k_b END AS k
      FROM streams st
      CROSS JOIN LATERAL generate_series(1, st.n, 10) g
      CROSS JOIN LATERAL generate_series(0, least(st.m, 1 + g % 3) - 1) j
      CROSS JOIN LATERAL (SELECT pg_temp.msg_ms(st.start_ms, st.span_ms, g, st.n) AS ms) t
      OFFSET 0) x
JOIN mem a ON a.sr = x.sr AND a.k = x.k
ORDER BY 1;

-------------------------------------------------------------------------------------------
-- Read states, DM read states, activity, audit log, invites, bans
-------------------------------------------------------------------------------------------
-- Each member has read states in up to 2 * read_states of the server's channels (from
-- channel (k * 7) mod nch on), most read up to a recent message, with a few mentions.
INSERT INTO read_states (user_id, channel_id, last_read_message_id, mention_count, updated_at)
SELECT x.user_id, c.id,
       pg_temp.msg_id(pg_temp.msg_ms(st.start_ms, st.span_ms, g.g, st.n), st.id, g.g),
       CASE WHEN x.q2 < 0.1 THEN 1 + (x.q2 * 50)::int ELSE 0 END,
       pg_temp.ts(coalesce(pg_temp.msg_ms(st.start_ms, st.span_ms, g.g, st.n), c.created_ms) + 5000)
FROM (SELECT m.sr, m.user_id, (m.k * 7 + j) % s.nch AS c, random() AS q, random() AS q2
      FROM mem m
      JOIN srv s ON s.r = m.sr
      CROSS JOIN LATERAL generate_series(0, least(s.nch, floor(random() * 2 * :read_states)::int + 0 * m.k) - 1) j
      OFFSET 0) x
JOIN chan c ON c.sr = x.sr AND c.c = x.c
LEFT JOIN streams st ON st.id = c.id
-- read up to a message near the end: most are up to date, some far behind
CROSS JOIN LATERAL (SELECT CASE WHEN st.n > 0 THEN greatest(1, st.n - floor(st.n * power(x.q, 4))::bigint) END AS g) g
ORDER BY 1, 2;

INSERT INTO dm_read_states (user_id, conversation_id, last_read_message_id, updated_at)
SELECT u.user_id, d.id, pg_temp.msg_id(pg_temp.msg_ms(st.start_ms, st.span_ms, u.g, st.n), st.id, u.g),
       pg_temp.ts(pg_temp.msg_ms(st.start_ms, st.span_ms, u.g, st.n) + 5000)
FROM dmc d
JOIN streams st ON st.id = d.id
CROSS JOIN LATERAL (VALUES (d.user_a, greatest(1, st.n - (random() * 3)::int)),
                           (d.user_b, greatest(1, st.n - (random() * 3)::int))) u(user_id, g);

-- Activity items (never pruned by the server): Pareto-distributed per member (alpha 1.5,
-- so a few heavy users have thousands); older than a week read, newer ones 40% unread.
SELECT :activity::float8 / greatest(1, (SELECT count(*) FROM mem)) AS act_avg \gset
INSERT INTO activity_items (id, user_id, server_id, type, actor_id, message_id, channel_id,
                            conversation_id, content_preview, emoji, read, created_at)
SELECT pg_temp.u7(x.ms, md5(random()::text)), x.user_id, x.sid, x.kind, a.user_id,
       CASE WHEN x.kind <> 'server_dm' THEN pg_temp.msg_id(pg_temp.msg_ms(st.start_ms, st.span_ms, g.g, st.n), st.id, g.g) END,
       CASE WHEN x.kind <> 'server_dm' THEN c.id END, NULL, 'something someone said',
       CASE WHEN x.kind = 'reaction' THEN '👍' END,
       x.ms < :t_end - 7 * 86400000::bigint OR x.q < 0.6, pg_temp.ts(x.ms)
FROM (SELECT m.sr, s.id AS sid, m.user_id, random() AS q,
             CASE WHEN random() < 0.4 THEN 'mention' WHEN random() < 0.5 THEN 'reply'
                  WHEN random() < 0.9 THEN 'reaction' ELSE 'server_dm' END AS kind,
             floor(s.m * power(random(), 2.5))::int AS actor_k,
             floor(random() * s.nch)::int AS c,
             random() AS gq,
             :t_end - ((:t_end - m.join_ms) * power(random(), 3))::bigint AS ms
      FROM mem m
      JOIN srv s ON s.r = m.sr
      CROSS JOIN LATERAL generate_series(1, least(20000, floor(:act_avg / 3 * power(1 - random(), -1 / 1.5)))::int + 0 * m.k) j
      OFFSET 0) x
JOIN mem a ON a.sr = x.sr AND a.k = x.actor_k
JOIN chan c ON c.sr = x.sr AND c.c = x.c
LEFT JOIN streams st ON st.id = c.id
CROSS JOIN LATERAL (SELECT CASE WHEN st.n > 0 THEN 1 + floor(x.gq * st.n)::bigint END AS g) g
ORDER BY 1;

-- Audit log: ~ r^-1 entries per server, by its first members, denser recently.
INSERT INTO audit_log (id, server_id, actor_id, action, target_type, target_id, details, created_at)
SELECT pg_temp.u7(x.ms, md5(random()::text)), x.sid, a.user_id, x.action,
       split_part(x.action, '.', 1), pg_temp.u7(x.ms - 1000, md5(random()::text)),
       CASE WHEN x.q < 0.3 THEN jsonb_build_object('reason', 'spam') END, pg_temp.ts(x.ms)
FROM (SELECT s.r, s.id AS sid, floor(least(s.m, 5) * random())::int AS k, random() AS q,
             (ARRAY['message.delete','message.delete','message.delete','message.pin','member.kick',
                    'member.ban','member.unban','member.roles_update','invite.create','invite.revoke',
                    'channel.create','channel.update','channel.delete','role.create','role.update',
                    'category.update','webhook.create','server.update'])[1 + floor(power(random(), 1.5) * 18)::int] AS action,
             :t_end - ((:t_end - s.created_ms) * power(random(), 2))::bigint AS ms
      FROM srv s CROSS JOIN LATERAL generate_series(1, s.n_audit + 0 * s.r) j
      OFFSET 0) x
JOIN mem a ON a.sr = x.r AND a.k = x.k
ORDER BY 1;

-- Invites: 1 + ~r^-0.5 per server; codes are distinct 8-hex-digit numbers.
INSERT INTO invites (id, server_id, code, created_by, max_uses, use_count, expires_at, revoked, created_at)
SELECT pg_temp.u7(x.ms, md5('invite' || x.n)), x.sid, lpad(to_hex((x.n * 2654435761) % 4294967296), 8, '0'),
       a.user_id, CASE WHEN x.n % 3 = 0 THEN 100 END, (x.n * 13) % 50,
       CASE WHEN x.n % 4 = 0 THEN pg_temp.ts(x.ms + 86400000::bigint * 7) END, x.n % 10 = 0, pg_temp.ts(x.ms)
FROM (SELECT s.r, s.id AS sid, row_number() OVER () AS n, least(s.m - 1, j % 5) AS k,
             :t_end - ((:t_end - s.created_ms) * random())::bigint AS ms
      FROM srv s CROSS JOIN LATERAL generate_series(0, round(10 * power(s.r, -0.5))::int) j) x
JOIN mem a ON a.sr = x.r AND a.k = x.k;

-- Bans: one in 200 of a server's member count, pool users who are not members (the pool
-- users after its members in its stride), by the founder.
INSERT INTO bans (id, server_id, user_id, banned_by, reason, created_at)
SELECT pg_temp.u7(x.ms, md5('ban' || s.id || x.j)), s.id,
       pg_temp.uid((s.pool_off + (s.m + x.j) * 1000003::bigint) % :users, :t_start - 86400000::bigint * 60),
       f.user_id, CASE WHEN x.j % 2 = 0 THEN 'spam' END, pg_temp.ts(x.ms)
FROM srv s
JOIN mem f ON f.sr = s.r AND f.k = 0
CROSS JOIN LATERAL (SELECT j, :t_end - ((:t_end - s.created_ms) * random())::bigint AS ms
                    FROM generate_series(0, s.m / 200 - 1) j) x
WHERE s.m + s.m / 200 < :users;

-------------------------------------------------------------------------------------------
-- Indexes back, statistics
-------------------------------------------------------------------------------------------
SET session_replication_role = origin;
SELECT def FROM pgsize_saved_indexes WHERE to_regclass(name) IS NULL ORDER BY name \gexec
DROP TABLE pgsize_saved_indexes;

VACUUM;
ANALYZE;
