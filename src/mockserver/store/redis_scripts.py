"""The Lua scripts of the Redis store: every step that reads and then writes runs in Redis.

A script runs atomically on the Redis server, whichever mock process or host sends it: the
quota's check-and-increment, claiming a fault's `times`, a token within the limit of active
ones, a reset. Each script gets the deployment's key prefix as ARGV[1] and reaches only keys
under it (so it is for a single Redis, not a Redis Cluster). Rows travel as JSON objects.

Keys under the prefix P:
    P..'account:'..id   hash   an account (id, plan, created_at, seq)
    P..'accounts'       zset   account ids by seq (the order they were added in)
    P..'token:'..id     hash   a token: its digest and display prefix, never the token
    P..'digest:'..hex   string the id of the token with that SHA-256 digest
    P..'tokens:'..acct  zset   an account's token ids by seq
    P..'usage:'..acct   hash   PERIOD..':images' and PERIOD..':bytes' per UTC month
    P..'clock'          string the frozen instant, absent for real time
    P..'fault:'..id     hash   a fault rule; P..'faults' zset of their ids by seq
    P..'fixture:'..sha  hash   prompt -> JSON [name, text, media type]; P..'fixtures' zset of
                               SHA..'\\n'..PROMPT by seq
    P..'journal'        list   SEQ..' '..JSON per request, oldest first, trimmed to the caps
    P..'journal-bytes'  string the journal's size in bytes (for its cap in bytes)
    P..'seq', P..'journal-seq'  counters; P..'schema' the layout's version
"""

from __future__ import annotations

_LIBRARY = """
local P = ARGV[1]

local function put_hash(key, row)
    local args = {}
    for name, value in pairs(row) do
        if value ~= cjson.null then
            args[#args + 1] = name
            args[#args + 1] = tostring(value)
        end
    end
    redis.call('HSET', key, unpack(args))
end

local function put_account(account)
    account.seq = redis.call('INCR', P .. 'seq')
    put_hash(P .. 'account:' .. account.id, account)
    redis.call('ZADD', P .. 'accounts', account.seq, account.id)
end

local function put_token(token)
    token.seq = redis.call('INCR', P .. 'seq')
    put_hash(P .. 'token:' .. token.id, token)
    redis.call('SET', P .. 'digest:' .. token.digest, token.id)
    redis.call('ZADD', P .. 'tokens:' .. token.account_id, token.seq, token.id)
end

local function append_journal(entry, cap, max_bytes)
    local seq = redis.call('INCR', P .. 'journal-seq')
    local line = seq .. ' ' .. entry
    local length = redis.call('RPUSH', P .. 'journal', line)
    local size = redis.call('INCRBY', P .. 'journal-bytes', #line)
    while length > cap or (size > max_bytes and length > 1) do
        local dropped = redis.call('LPOP', P .. 'journal')
        size = redis.call('DECRBY', P .. 'journal-bytes', #dropped)
        length = length - 1
    end
    return seq
end

local function find_token(digest)
    local id = redis.call('GET', P .. 'digest:' .. digest)
    if not id then return nil end
    local account_id = redis.call('HGET', P .. 'token:' .. id, 'account_id')
    if not account_id then return nil end
    return {redis.call('HGETALL', P .. 'token:' .. id),
            redis.call('HGETALL', P .. 'account:' .. account_id), account_id}
end

local function rows(index, kind)
    local found = {}
    for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
        found[#found + 1] = redis.call('HGETALL', P .. kind .. id)
    end
    return found
end
"""

# ARGV: P, glob pattern matching every key under P, JSON {"accounts": [...], "tokens": [...]}
RESET = """
local cursor = '0'
repeat
    local page = redis.call('SCAN', cursor, 'MATCH', ARGV[2], 'COUNT', 1000)
    cursor = page[1]
    for _, key in ipairs(page[2]) do
        if key ~= P .. 'schema' then redis.call('UNLINK', key) end
    end
until cursor == '0'
local seed = cjson.decode(ARGV[3])
for _, account in ipairs(seed.accounts) do put_account(account) end
for _, token in ipairs(seed.tokens) do put_token(token) end
"""

# ARGV: P, account JSON, token JSON
CREATE_ACCOUNT = """
put_account(cjson.decode(ARGV[2]))
put_token(cjson.decode(ARGV[3]))
"""

# ARGV: P, token JSON, now (ISO-8601, compared as text like SQLite does), max active
ADD_TOKEN = """
local token = cjson.decode(ARGV[2])
local active = 0
for _, id in ipairs(redis.call('ZRANGE', P .. 'tokens:' .. token.account_id, 0, -1)) do
    local state = redis.call('HMGET', P .. 'token:' .. id, 'revoked_at', 'expires_at')
    if not state[1] and (not state[2] or state[2] > ARGV[3]) then active = active + 1 end
end
if active >= tonumber(ARGV[4]) then return 0 end
put_token(token)
return 1
"""

# ARGV: P, account id
DELETE_ACCOUNT = """
if redis.call('DEL', P .. 'account:' .. ARGV[2]) == 0 then return 0 end
redis.call('ZREM', P .. 'accounts', ARGV[2])
redis.call('DEL', P .. 'usage:' .. ARGV[2])
return 1
"""

# ARGV: P, key suffix, field, value: set a field of an existing hash only (1), else 0
UPDATE_FIELD = """
if redis.call('EXISTS', P .. ARGV[2]) == 0 then return 0 end
redis.call(ARGV[5] == 'keep' and 'HSETNX' or 'HSET', P .. ARGV[2], ARGV[3], ARGV[4])
return 1
"""

# ARGV: P, digest -> {token hash, account hash (empty if deleted), account id} or nil
FIND_TOKEN = """
return find_token(ARGV[2])
"""

# ARGV: P, digest ('' for none), period -> what an OCR request reads first, in one round trip:
# {frozen instant or nil, any fault (0/1), any fixture (0/1), the token as FIND_TOKEN gives it
# (empty if none), images used and bytes processed in the period by the token's account}
ARRIVE = """
local found = ARGV[2] ~= '' and find_token(ARGV[2]) or {}
local used = {}
if found[3] then
    local key = P .. 'usage:' .. found[3]
    used = redis.call('HMGET', key, ARGV[3] .. ':images', ARGV[3] .. ':bytes')
end
return {redis.call('GET', P .. 'clock'), redis.call('EXISTS', P .. 'faults'),
        redis.call('EXISTS', P .. 'fixtures'), found, used[1] or '0', used[2] or '0'}
"""

# ARGV: P, account id, period, limit (-1: none), size, journal entry JSON, journal caps
# (entries, bytes)
# -> the entry's seq when counted, 0 when the quota is used up (nothing written then)
COUNT_IMAGE = """
local usage = P .. 'usage:' .. ARGV[2]
local limit = tonumber(ARGV[4])
local used = tonumber(redis.call('HGET', usage, ARGV[3] .. ':images') or '0')
if limit >= 0 and used >= limit then return 0 end
redis.call('HINCRBY', usage, ARGV[3] .. ':images', 1)
redis.call('HINCRBY', usage, ARGV[3] .. ':bytes', ARGV[5])
local seq = append_journal(ARGV[6], tonumber(ARGV[7]), tonumber(ARGV[8]))
redis.call('SET', P .. 'counted:' .. ARGV[9], seq, 'EX', 3600)
return seq
"""

# ARGV: P, journal entry JSON, journal caps (entries, bytes) -> the entry's seq
RECORD = """
return append_journal(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]))
"""

# ARGV: P, index zset suffix, row hash prefix -> every row, in the index's order
LIST_ROWS = """
return rows(P .. ARGV[2], ARGV[3])
"""

# ARGV: P, fault JSON
ADD_FAULT = """
local fault = cjson.decode(ARGV[2])
local seq = redis.call('INCR', P .. 'seq')
put_hash(P .. 'fault:' .. fault.id, fault)
redis.call('ZADD', P .. 'faults', seq, fault.id)
"""

# ARGV: P, fault id or '' for all -> how many went
DELETE_FAULTS = """
local ids = ARGV[2] ~= '' and {ARGV[2]} or redis.call('ZRANGE', P .. 'faults', 0, -1)
local deleted = 0
for _, id in ipairs(ids) do
    deleted = deleted + redis.call('ZREM', P .. 'faults', id)
    redis.call('DEL', P .. 'fault:' .. id)
end
return deleted
"""

# ARGV: P, account id -> the first matching rule as it was before this claim, or nil
TAKE_FAULT = """
for _, id in ipairs(redis.call('ZRANGE', P .. 'faults', 0, -1)) do
    local key = P .. 'fault:' .. id
    local rule = redis.call('HMGET', key, 'account_id', 'remaining')
    if (not rule[1] or rule[1] == ARGV[2]) and (not rule[2] or tonumber(rule[2]) > 0) then
        local claimed = redis.call('HGETALL', key)
        if rule[2] == '1' then
            redis.call('DEL', key)
            redis.call('ZREM', P .. 'faults', id)
        elseif rule[2] then
            redis.call('HINCRBY', key, 'remaining', -1)
        end
        return claimed
    end
end
return nil
"""

# ARGV: P, sha256, prompt, JSON [name, text, media type]
ADD_FIXTURE = """
local seq = redis.call('INCR', P .. 'seq')
redis.call('ZADD', P .. 'fixtures', seq, ARGV[2] .. '\\n' .. ARGV[3])
redis.call('HSET', P .. 'fixture:' .. ARGV[2], ARGV[3], ARGV[4])
"""

# ARGV: P -> {sha256, prompt, JSON} per fixture, in the order they were registered
LIST_FIXTURES = """
local found = {}
for _, member in ipairs(redis.call('ZRANGE', P .. 'fixtures', 0, -1)) do
    local cut = string.find(member, '\\n', 1, true)
    local sha, prompt = string.sub(member, 1, cut - 1), string.sub(member, cut + 1)
    found[#found + 1] = {sha, prompt, redis.call('HGET', P .. 'fixture:' .. sha, prompt)}
end
return found
"""

_BODIES = {
    "reset": RESET,
    "create_account": CREATE_ACCOUNT,
    "add_token": ADD_TOKEN,
    "delete_account": DELETE_ACCOUNT,
    "update_field": UPDATE_FIELD,
    "find_token": FIND_TOKEN,
    "arrive": ARRIVE,
    "count_image": COUNT_IMAGE,
    "record": RECORD,
    "list_rows": LIST_ROWS,
    "add_fault": ADD_FAULT,
    "delete_faults": DELETE_FAULTS,
    "take_fault": TAKE_FAULT,
    "add_fixture": ADD_FIXTURE,
    "list_fixtures": LIST_FIXTURES,
}
SCRIPTS = {name: _LIBRARY + body for name, body in _BODIES.items()}
"""Each script's source, the shared library of local functions in front."""
