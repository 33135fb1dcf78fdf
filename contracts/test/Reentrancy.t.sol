// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Reentrancy: an escrow deployed over a malicious token whose transfer calls back into the escrow while
 * a payout is in flight, acting as the channel's own seller or payer so that only the reentrancy guard
 * (and checks-effects-interactions behind it) stands in the way. The callback must fail; when the token
 * swallows the failure the attacker still ends with exactly what it was entitled to.
 */

import {Sig} from "./utils/Sig.sol";
import {OpenSeedChannels} from "../src/OpenSeedChannels.sol";
import {ReentrantToken} from "./mocks/ReentrantToken.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";

contract ReentrancyTest is Sig {
    uint64 internal constant GRACE = 15 minutes;
    uint256 internal constant SIGNER_KEY = 0x5161E4;
    bytes32 internal constant META = keccak256("request body");
    bytes32 internal constant SALT = bytes32(uint256(1));

    ReentrantToken internal rt;
    OpenSeedChannels internal escrow;
    address internal signer;
    address internal payer = address(0xA11CE);
    address internal seller = address(0x5E11E4);
    bytes internal guardError = abi.encodeWithSelector(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);

    function setUp() public {
        vm.warp(1_700_000_000);
        rt = new ReentrantToken();
        escrow = new OpenSeedChannels(address(rt), GRACE);
        signer = vm.addr(SIGNER_KEY);
        rt.mint(payer, 1_000e6);
        rt.mint(address(rt), 1_000e6);
        vm.prank(payer);
        rt.approve(address(escrow), type(uint256).max);
        rt.act(address(rt), abi.encodeCall(rt.approve, (address(escrow), type(uint256).max)));
    }

    function _claimCall(bytes32 id, uint256 cum, uint64 nonce) internal view returns (bytes memory) {
        bytes memory sig = signVoucher(SIGNER_KEY, address(escrow), id, cum, nonce, META);
        return abi.encodeCall(OpenSeedChannels.claim, (id, cum, nonce, META, sig));
    }

    /// A channel whose seller is the malicious token.
    function _openToToken() internal returns (bytes32 id) {
        vm.prank(payer);
        id = escrow.open(address(rt), signer, bytes32(0), 100e6, SALT);
    }

    /// A channel whose payer is the malicious token.
    function _openFromToken() internal returns (bytes32 id) {
        bytes memory ret =
            rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.open, (seller, signer, bytes32(0), 100e6, SALT)));
        id = abi.decode(ret, (bytes32));
    }

    function test_claim_reentering_claim_gains_nothing() public {
        bytes32 id = _openToToken();
        uint256 before = rt.balanceOf(address(rt));
        rt.arm(address(escrow), _claimCall(id, 60e6, 2), true);
        rt.act(address(escrow), _claimCall(id, 30e6, 1));
        vm.assertTrue(rt.attacked(), "callback ran");
        vm.assertFalse(rt.reentrySucceeded(), "reentrant claim failed");
        vm.assertEq(rt.reentryError(), guardError, "stopped by the guard");
        vm.assertEq(rt.balanceOf(address(rt)) - before, 30e6, "paid the first voucher only");
        (,,,,, uint128 claimed,,) = escrow.getChannel(id);
        vm.assertEq(claimed, 30e6, "claimed");
        vm.assertEq(rt.balanceOf(address(escrow)), 70e6, "escrow keeps the rest");
    }

    function test_claim_reentry_propagated_reverts_everything() public {
        bytes32 id = _openToToken();
        rt.arm(address(escrow), _claimCall(id, 60e6, 2), false);
        vm.expectRevert(guardError);
        rt.act(address(escrow), _claimCall(id, 30e6, 1));
        (,,,,, uint128 claimed,,) = escrow.getChannel(id);
        vm.assertEq(claimed, 0, "nothing booked");
        vm.assertEq(rt.balanceOf(address(escrow)), 100e6, "nothing paid");
    }

    function test_claim_reentering_close_gains_nothing() public {
        bytes32 id = _openToToken();
        uint256 before = rt.balanceOf(address(rt));
        rt.arm(address(escrow), abi.encodeCall(OpenSeedChannels.close, (id, 0, 0, bytes32(0), "")), true);
        rt.act(address(escrow), _claimCall(id, 30e6, 1));
        vm.assertEq(rt.reentryError(), guardError, "stopped by the guard");
        (,,,,,,, bool closed) = escrow.getChannel(id);
        vm.assertFalse(closed, "still open");
        vm.assertEq(rt.balanceOf(address(rt)) - before, 30e6, "paid once");
    }

    function test_close_reentering_claim_gains_nothing() public {
        bytes32 id = _openToToken();
        uint256 before = rt.balanceOf(address(rt));
        uint256 payerBefore = rt.balanceOf(payer);
        bytes memory sig = signVoucher(SIGNER_KEY, address(escrow), id, 40e6, 1, META);
        rt.arm(address(escrow), _claimCall(id, 90e6, 2), true);
        rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.close, (id, 40e6, 1, META, sig)));
        vm.assertEq(rt.reentryError(), guardError, "stopped by the guard");
        vm.assertEq(rt.balanceOf(address(rt)) - before, 40e6, "seller paid its voucher");
        vm.assertEq(rt.balanceOf(payer) - payerBefore, 60e6, "payer refunded the rest");
        vm.assertEq(rt.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_withdraw_reentering_withdraw_gains_nothing() public {
        bytes32 id = _openFromToken();
        bytes memory sig = signVoucher(SIGNER_KEY, address(escrow), id, 10e6, 1, META);
        vm.prank(seller);
        escrow.claim(id, 10e6, 1, META, sig);
        rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.requestClose, (id)));
        vm.warp(block.timestamp + GRACE);
        uint256 before = rt.balanceOf(address(rt));
        rt.arm(address(escrow), abi.encodeCall(OpenSeedChannels.withdraw, (id)), true);
        rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.withdraw, (id)));
        vm.assertEq(rt.reentryError(), guardError, "stopped by the guard");
        vm.assertEq(rt.balanceOf(address(rt)) - before, 90e6, "refunded once");
        vm.assertEq(rt.balanceOf(address(escrow)), 0, "escrow empty");
    }

    function test_withdraw_reentering_open_and_topUp_refused() public {
        bytes32 id = _openFromToken();
        rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.requestClose, (id)));
        vm.warp(block.timestamp + GRACE);
        rt.arm(
            address(escrow),
            abi.encodeCall(OpenSeedChannels.open, (seller, signer, bytes32(0), 50e6, bytes32(uint256(2)))),
            true
        );
        rt.act(address(escrow), abi.encodeCall(OpenSeedChannels.withdraw, (id)));
        vm.assertEq(rt.reentryError(), guardError, "open stopped by the guard");
        vm.assertEq(rt.balanceOf(address(escrow)), 0, "no new deposit");
    }
}
