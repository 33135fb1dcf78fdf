// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Test-only ERC-20 that can skim a fee from every transfer, so the escrow's balance-delta check has a
 * token to refuse. The fee starts at zero so a channel can be opened before it is switched on.
 */

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

contract FeeOnTransferToken is ERC20 {
    uint256 public feeBps;
    address public constant FEE_SINK = address(0xFEE);

    constructor() ERC20("Fee Token", "FEE") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function setFeeBps(uint256 bps) external {
        feeBps = bps;
    }

    function _update(address from, address to, uint256 value) internal override {
        uint256 fee = (from == address(0) || to == address(0)) ? 0 : (value * feeBps + 9_999) / 10_000;
        if (fee != 0) super._update(from, FEE_SINK, fee);
        super._update(from, to, value - fee);
    }
}
