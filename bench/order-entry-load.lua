-- The load of the order-entry benchmark, run by wrk (C; a Node load generator took a good part of one
-- of this machine's two cores from the server, see flash-load.lua): limit orders of 0.01 BTC from the
-- prepared traders in turn, buys and sells alternating a few ticks around 30,000 so that about half of
-- them cross. Arguments (after wrk's `--`): a file of bearer tokens, one per line.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk-statuses.lua")

local tokens
local n = 0

function init(args)
  tokens = read_tokens(args[1])
end

function request()
  local i = n
  n = n + 1
  local side = (i % 2 == 0) and "BUY" or "SELL"
  local offset = math.floor(i / 2) % 5
  local price = 30000 + ((side == "BUY") and offset or -offset)
  return wrk.format("POST", "/api/exchange/orders", {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. tokens[(i % #tokens) + 1],
  }, string.format('{"symbol":"BTC-USDT","side":"%s","type":"LIMIT","price":"%d.00","quantity":"0.01"}', side, price))
end
