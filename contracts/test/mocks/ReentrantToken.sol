// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Test-only malicious ERC-20: when the escrow pays out (a transfer from the escrow), it calls back into
 * the escrow with a prepared call, acting as itself. Tests make this token the channel's seller or payer
 * so the callback passes the role checks and only the reentrancy guard can stop it. In "swallow" mode
 * the callback's failure is recorded and the payout goes on, to show the attacker gains nothing; otherwise
 * the failure propagates and the whole payout reverts.
 */

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract ReentrantToken is ERC20 {
    address public escrow;
    bytes public attack;
    bool public swallow;
    bool public attacked;
    bool public reentrySucceeded;
    bytes public reentryError;

    constructor() ERC20("Reentrant Token", "REENT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address escrow_, bytes calldata attack_, bool swallow_) external {
        escrow = escrow_;
        attack = attack_;
        swallow = swallow_;
        attacked = false;
    }

    /// Lets the token act as a channel's payer or seller.
    function act(address target, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = target.call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    function _update(address from, address to, uint256 value) internal override {
        super._update(from, to, value);
        if (from == escrow && escrow != address(0) && !attacked && attack.length != 0) {
            attacked = true;
            (bool ok, bytes memory ret) = escrow.call(attack);
            reentrySucceeded = ok;
            reentryError = ret;
            if (!ok && !swallow) {
                assembly ("memory-safe") {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
        }
    }
}
