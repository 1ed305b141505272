-- The load of the flash-sale benchmark, run by wrk (C): purchase attempts at one campaign, each from a
-- random prepared buyer with a fresh Idempotency-Key. wrk rather than autocannon here: at 10,000
-- attempts/s a Node load generator takes most of one of this machine's two cores from the server.
-- Arguments (after wrk's `--`): a file of bearer tokens, one per line; the attempts path.

dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-statuses.lua")

local tokens
local path
local body = '{"quantity":1}'
local sent = 0
local prefix

function init(args)
  tokens = read_tokens(args[1])
  path = args[2]
  math.randomseed(os.time())
  -- Keys are unique per run (counter) and across runs (a random prefix).
  prefix = string.format("%08x", math.random(0, 0x7fffffff))
end

function request()
  sent = sent + 1
  return wrk.format("POST", path, {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. tokens[math.random(#tokens)],
    ["idempotency-key"] = prefix .. "-" .. sent,
  }, body)
end
