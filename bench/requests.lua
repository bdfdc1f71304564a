-- wrk script: replay pre-built requests from a file, each once (wrapping round only if wrk outruns it).
--   wrk -s bench/requests.lua <url> -- <file> <threads> [first]
-- One request a line, tab-separated: METHOD, path, Cookie header (may be empty), JSON body (may be empty).
-- Thread t of n sends lines first+t+1, first+t+1+n, ... so no two threads send the same request; a measured
-- run starts after the lines its warm-up may have sent (a check-in submitted again is only "already recorded").

local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  local file, nthreads = args[1], tonumber(args[2] or "1")
  step = nthreads
  idx = tonumber(args[3] or "0") + (tid or 0)
  reqs = {}
  for line in io.lines(file) do
    local method, path, cookie, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
    if method then
      local headers = {}
      if cookie ~= "" then headers["Cookie"] = cookie end
      if body ~= "" then headers["Content-Type"] = "application/json" else body = nil end
      reqs[#reqs + 1] = wrk.format(method, path, headers, body)
    end
  end
  if #reqs == 0 then error("no requests in " .. file) end
end

function request()
  local r = reqs[(idx % #reqs) + 1]
  idx = idx + step
  return r
end
