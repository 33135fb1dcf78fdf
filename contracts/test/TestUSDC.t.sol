// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * TestUSDC: USDC-like metadata and EIP-712 domain ("USD Coin", "2"), EIP-2612 permit, and EIP-3009
 * transfer/receive/cancel with their validity window, replay, payee and high-s checks. Signatures come
 * from the independent encoder in test/utils/Sig.sol.
 */

import {Sig} from "./utils/Sig.sol";
import {TestUSDC} from "../src/TestUSDC.sol";

contract TestUSDCTest is Sig {
    uint256 internal constant T0 = 1_700_000_000;
    uint256 internal constant OWNER_KEY = 0x0B0B;
    uint256 internal constant OTHER_KEY = 0xBAD;
    bytes32 internal constant NONCE = keccak256("auth nonce");

    TestUSDC internal usdc;
    address internal owner;
    address internal spender = address(0x5BE4D);
    address internal to = address(0x70);

    function setUp() public {
        vm.warp(T0);
        usdc = new TestUSDC();
        owner = vm.addr(OWNER_KEY);
        usdc.mint(owner, 100e6);
    }

    function test_metadata_and_domain() public view {
        vm.assertEq(usdc.name(), "USD Coin", "name");
        vm.assertEq(usdc.symbol(), "USDC", "symbol");
        vm.assertEq(uint256(usdc.decimals()), 6, "decimals");
        vm.assertEq(usdc.version(), "2", "version");
        vm.assertEq(usdc.DOMAIN_SEPARATOR(), usdcDomain(address(usdc)), "domain separator");
        (, string memory name, string memory version, uint256 chainId, address vc,,) = usdc.eip712Domain();
        vm.assertEq(name, "USD Coin", "eip712 name");
        vm.assertEq(version, "2", "eip712 version");
        vm.assertEq(chainId, block.chainid, "chainId");
        vm.assertEq(vc, address(usdc), "verifyingContract");
        // Type hashes as published by EIP-2612 and EIP-3009 (and FiatToken's constants).
        vm.assertEq(
            usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(),
            0x7c7c6cdb67a18743f49ec6fa9b35f50d52ed05cbed4cc592e13b44501c1a2267,
            "TransferWithAuthorization typehash"
        );
        vm.assertEq(
            usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(),
            0xd099cc98ef71107a616c4f0f941f04c322d8e254fe26b3c6668db87aae413de8,
            "ReceiveWithAuthorization typehash"
        );
        vm.assertEq(
            usdc.CANCEL_AUTHORIZATION_TYPEHASH(),
            0x158b0a9edf7a828aad02f63cd515c68ef2f50ba807396f6d12842833a1597429,
            "CancelAuthorization typehash"
        );
        vm.assertEq(
            usdc.PERMIT_TYPEHASH(),
            0x6e71edae12b1b97f4d1f60370fef10105fa2faae0126114a169c64845d6126c9,
            "Permit typehash"
        );
    }

    function test_mint_is_open() public {
        vm.prank(address(0xdead));
        usdc.mint(to, 5);
        vm.assertEq(usdc.balanceOf(to), 5, "minted");
        vm.assertEq(usdc.totalSupply(), 100e6 + 5, "supply");
    }

    // ---- EIP-2612 -----------------------------------------------------------------------------

    /// Signs a permit for `owner` (always the real owner) with `key` (which may be someone else's).
    function _permitSig(uint256 key, uint256 value, uint256 nonce, uint256 deadline)
        internal
        view
        returns (uint8, bytes32, bytes32)
    {
        bytes32 structHash = keccak256(abi.encode(PERMIT_TH, owner, spender, value, nonce, deadline));
        return vm.sign(key, typedDigest(usdcDomain(address(usdc)), structHash));
    }

    function test_permit_success_and_replay() public {
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(OWNER_KEY, 40e6, 0, T0 + 60);
        usdc.permit(owner, spender, 40e6, T0 + 60, v, r, s);
        vm.assertEq(usdc.allowance(owner, spender), 40e6, "allowance");
        vm.assertEq(usdc.nonces(owner), 1, "nonce used");
        vm.prank(spender);
        usdc.transferFrom(owner, to, 40e6);
        vm.assertEq(usdc.balanceOf(to), 40e6, "spent through permit");
        // Replay: the nonce has moved on, so the same signature recovers another address.
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        usdc.permit(owner, spender, 40e6, T0 + 60, v, r, s);
    }

    function test_permit_refusals() public {
        (uint8 v, bytes32 r, bytes32 s) = _permitSig(OWNER_KEY, 40e6, 0, T0 - 1);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.PermitExpired.selector, T0 - 1));
        usdc.permit(owner, spender, 40e6, T0 - 1, v, r, s);
        (v, r, s) = _permitSig(OTHER_KEY, 40e6, 0, T0 + 60);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidSigner.selector, vm.addr(OTHER_KEY), owner));
        usdc.permit(owner, spender, 40e6, T0 + 60, v, r, s);
        vm.assertEq(usdc.allowance(owner, spender), 0, "no allowance");
    }

    // ---- EIP-3009 -----------------------------------------------------------------------------

    function _authSig(bytes32 typehash, uint256 key, address to_, uint256 value, uint256 after_, uint256 before_)
        internal
        view
        returns (uint8, bytes32, bytes32)
    {
        return vm.sign(key, authDigest(typehash, address(usdc), owner, to_, value, after_, before_, NONCE));
    }

    function test_transferWithAuthorization_success_and_replay() public {
        (uint8 v, bytes32 r, bytes32 s) = _authSig(TRANSFER_AUTH_TH, OWNER_KEY, to, 7e6, T0 - 1, T0 + 60);
        vm.assertFalse(usdc.authorizationState(owner, NONCE), "unused");
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationUsed(owner, NONCE);
        vm.prank(address(0x4E1A7)); // any relayer
        usdc.transferWithAuthorization(owner, to, 7e6, T0 - 1, T0 + 60, NONCE, v, r, s);
        vm.assertEq(usdc.balanceOf(to), 7e6, "received");
        vm.assertEq(usdc.balanceOf(owner), 93e6, "sent");
        vm.assertTrue(usdc.authorizationState(owner, NONCE), "used");
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationUsedOrCanceled.selector, owner, NONCE));
        usdc.transferWithAuthorization(owner, to, 7e6, T0 - 1, T0 + 60, NONCE, v, r, s);
    }

    function test_transferWithAuthorization_window() public {
        (uint8 v, bytes32 r, bytes32 s) = _authSig(TRANSFER_AUTH_TH, OWNER_KEY, to, 7e6, T0, T0 + 60);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationNotYetValid.selector, T0));
        usdc.transferWithAuthorization(owner, to, 7e6, T0, T0 + 60, NONCE, v, r, s);
        vm.warp(T0 + 60);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationExpired.selector, T0 + 60));
        usdc.transferWithAuthorization(owner, to, 7e6, T0, T0 + 60, NONCE, v, r, s);
        vm.warp(T0 + 59);
        usdc.transferWithAuthorization(owner, to, 7e6, T0, T0 + 60, NONCE, v, r, s);
        vm.assertEq(usdc.balanceOf(to), 7e6, "valid inside the window");
    }

    function test_transferWithAuthorization_bad_signatures() public {
        (uint8 v, bytes32 r, bytes32 s) = _authSig(TRANSFER_AUTH_TH, OTHER_KEY, to, 7e6, 0, T0 + 60);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidSigner.selector, vm.addr(OTHER_KEY), owner));
        usdc.transferWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
        (v, r, s) = _authSig(TRANSFER_AUTH_TH, OWNER_KEY, to, 7e6, 0, T0 + 60);
        // Amount changed after signing.
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        usdc.transferWithAuthorization(owner, to, 8e6, 0, T0 + 60, NONCE, v, r, s);
        // High-s twin of a valid signature.
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidSigner.selector, address(0), owner));
        usdc.transferWithAuthorization(
            owner, to, 7e6, 0, T0 + 60, NONCE, v == 27 ? 28 : 27, r, bytes32(SECP_N - uint256(s))
        );
        // A receive authorization is not a transfer authorization.
        (v, r, s) = _authSig(RECEIVE_AUTH_TH, OWNER_KEY, to, 7e6, 0, T0 + 60);
        vm.expectPartialRevert(TestUSDC.InvalidSigner.selector);
        usdc.transferWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
        vm.assertEq(usdc.balanceOf(to), 0, "nothing moved");
    }

    function test_receiveWithAuthorization_payee_only() public {
        (uint8 v, bytes32 r, bytes32 s) = _authSig(RECEIVE_AUTH_TH, OWNER_KEY, to, 7e6, 0, T0 + 60);
        vm.prank(address(0x4E1A7));
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.CallerMustBePayee.selector, address(0x4E1A7), to));
        usdc.receiveWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
        vm.prank(to);
        usdc.receiveWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
        vm.assertEq(usdc.balanceOf(to), 7e6, "received");
        vm.prank(to);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationUsedOrCanceled.selector, owner, NONCE));
        usdc.receiveWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
    }

    function test_cancelAuthorization() public {
        bytes32 digest = typedDigest(
            usdcDomain(address(usdc)), keccak256(abi.encode(usdc.CANCEL_AUTHORIZATION_TYPEHASH(), owner, NONCE))
        );
        (uint8 cv, bytes32 cr, bytes32 cs) = vm.sign(OTHER_KEY, digest);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.InvalidSigner.selector, vm.addr(OTHER_KEY), owner));
        usdc.cancelAuthorization(owner, NONCE, cv, cr, cs);
        (cv, cr, cs) = vm.sign(OWNER_KEY, digest);
        vm.expectEmit(true, true, true, true, address(usdc));
        emit TestUSDC.AuthorizationCanceled(owner, NONCE);
        usdc.cancelAuthorization(owner, NONCE, cv, cr, cs);
        vm.assertTrue(usdc.authorizationState(owner, NONCE), "canceled");
        (uint8 v, bytes32 r, bytes32 s) = _authSig(TRANSFER_AUTH_TH, OWNER_KEY, to, 7e6, 0, T0 + 60);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationUsedOrCanceled.selector, owner, NONCE));
        usdc.transferWithAuthorization(owner, to, 7e6, 0, T0 + 60, NONCE, v, r, s);
        vm.expectRevert(abi.encodeWithSelector(TestUSDC.AuthorizationUsedOrCanceled.selector, owner, NONCE));
        usdc.cancelAuthorization(owner, NONCE, cv, cr, cs);
    }
}
