// The mount's names for the request gate, which lives in the conn library
// (conn/request_gate.h) shared with the MDS's calls to the OSTs.
#pragma once

#include "conn/request_gate.h"

namespace stripefs::client {

using conn::GateBypass;
using conn::GatePass;
using conn::InterruptFn;
using conn::RequestGate;

}  // namespace stripefs::client
